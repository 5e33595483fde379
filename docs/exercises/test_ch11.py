"""第 11 章练习的测试：pytest docs/exercises -k ch11。参照答案是导出 GGUF 时真正用的 permute_for_llama_cpp。"""
import torch
from exercise_loader import load

from studygpt.export.gguf import permute_for_llama_cpp
from studygpt.model.transformer import apply_rope, rope_tables

ex = load("ch11_export")
N_HEAD, HS, C, T = 2, 8, 4, 5


def reference(w: torch.Tensor, n_head: int) -> torch.Tensor:
    return torch.from_numpy(permute_for_llama_cpp(w.numpy(), n_head))


def test_permuted_rows_match_studygpt_export():
    numbered = torch.arange(N_HEAD * HS, dtype=torch.float32)[:, None].expand(-1, C)  # 第 r 行全是 r
    mine, expected = ex.permute_rows(numbered, N_HEAD), reference(numbered, N_HEAD)
    assert mine.shape == numbered.shape, f"形状应为 {tuple(numbered.shape)}，得到 {tuple(mine.shape)}"
    assert torch.equal(mine, expected), (f"重排后每一行来自旧的第几行：{mine[:, 0].int().tolist()}，"
                                         f"应为 {expected[:, 0].int().tolist()}（每个头各排各的）")
    w = torch.randn(N_HEAD * HS, C)
    torch.testing.assert_close(ex.permute_rows(w, N_HEAD), reference(w, N_HEAD))


def test_adjacent_pair_rope_on_permuted_rows_equals_our_rope():
    """先做我们的 RoPE 再重排 = 用重排过的 W 算 q，再做相邻配对的 RoPE：两边的注意力因此相同。"""
    cos, sin = rope_tables(HS, T, 10000.0)
    x, w = torch.randn(T, C), torch.randn(HS, C)  # 一个头：q = x·Wᵀ，(T, hs)
    ours = apply_rope(x @ w.T, cos, sin)
    order = reference(torch.arange(HS, dtype=torch.float32)[:, None], 1)[:, 0].long()
    theirs = ex.rope_adjacent_pairs(x @ reference(w, 1).T, cos, sin)
    torch.testing.assert_close(theirs, ours[:, order])
