"""文档掩码 (document mask) 的两条路：稠密布尔掩码 + SDPA（CPU，今天的路）与 FlexAttention 的 BlockMask（GPU）。

FlexAttention 只在 CUDA 上启用（model.uses_block_mask）。CPU 上它也能不编译地运行（慢，但算的是同一个东西），
所以这里把开关打开、换成不编译的 flex_attention，检查：BlockMask 的规则与 build_mask 逐个相同；
前向的 logits 与损失和稠密掩码那条路相同；打包的一行仍然等于各段对话单独算。
FlexAttention 在 CPU 上不做反向传播，梯度的比较在 GPU 上做（benchmarks/gpu_check.py）。
"""
import pytest
import torch

from studygpt.model import transformer as model_module
from studygpt.model.transformer import build_mask, document_block_mask, lm_loss
from tests.conftest import tiny_model

pytest.importorskip("torch.nn.attention.flex_attention")
V = 50


@pytest.fixture
def flex_on_cpu(monkeypatch):
    """让 CPU 也走 BlockMask + 不编译的 flex_attention（只在测试里）。"""
    from torch.nn.attention.flex_attention import flex_attention
    monkeypatch.setattr(model_module, "uses_block_mask", lambda device, dropout: True)
    monkeypatch.setattr(model_module, "compiled_flex_attention", lambda: flex_attention)


def packed_batch():
    """两行：第一行打包了三段对话，第二行两段加右侧填充。"""
    doc_ids = torch.tensor([[0] * 5 + [1] * 7 + [2] * 4, [0] * 9 + [1] * 4 + [-1] * 3])
    positions = torch.tensor([list(range(5)) + list(range(7)) + list(range(4)),
                              list(range(9)) + list(range(4)) + [0] * 3])
    torch.manual_seed(1)
    ids = torch.randint(0, V, doc_ids.shape)
    labels = ids.masked_fill(doc_ids < 0, -100)
    return {"input_ids": ids, "labels": labels, "doc_ids": doc_ids, "positions": positions}


def test_cpu_keeps_the_dense_mask():
    assert not model_module.uses_block_mask(torch.device("cpu"), 0.0)


def test_block_mask_rule_equals_build_mask():
    batch = packed_batch()
    B, T = batch["doc_ids"].shape
    block = document_block_mask(batch["doc_ids"])
    b, q, kv = torch.arange(B)[:, None, None], torch.arange(T)[None, :, None], torch.arange(T)[None, None, :]
    dense = block.mask_mod(b, 0, q, kv)  # (B, T, T)：对每个 (批, 查询, 键) 问一遍规则
    assert torch.equal(dense, build_mask(T, 0, None, batch["doc_ids"], "cpu")[:, 0])


def test_flex_attention_path_equals_dense_mask_path(flex_on_cpu, monkeypatch):
    batch = packed_batch()
    model = tiny_model(V, d_model=64, n_head=4)  # 每头 16 维：FlexAttention 在 GPU 上要求 ≥ 16
    results = []
    for use_flex in (False, True):
        monkeypatch.setattr(model_module, "uses_block_mask", lambda device, dropout: use_flex)
        with torch.no_grad():
            logits = model(batch["input_ids"], doc_ids=batch["doc_ids"], positions=batch["positions"])
            results.append((logits, lm_loss(model, batch)[0]))
    (dense_logits, dense_loss), (flex_logits, flex_loss) = results
    real = batch["doc_ids"] >= 0  # 填充位置的输出没人用（两条路里填充词元看到的东西一样，但不必比）
    torch.testing.assert_close(flex_logits[real], dense_logits[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(flex_loss, dense_loss, atol=1e-6, rtol=1e-5)


def test_packed_row_equals_each_dialogue_alone_on_the_flex_path(flex_on_cpu):
    model = tiny_model(V, d_model=64, n_head=4).eval()
    a, b = torch.randint(0, V, (1, 5)), torch.randint(0, V, (1, 8))
    with torch.no_grad():
        out = model(torch.cat([a, b], dim=1), doc_ids=torch.tensor([[0] * 5 + [1] * 8]),
                    positions=torch.tensor([list(range(5)) + list(range(8))]))
        torch.testing.assert_close(out[0, :5], model(a)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[0, 5:], model(b)[0], atol=1e-5, rtol=1e-5)
