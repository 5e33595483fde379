"""模型的"教学测试"：每一条都对应原项目的一个 bug 或一个容易写错的地方。容差 (tolerance) 写在各测试里。"""
import math

import pytest
import torch

from studygpt.batches.packing import PackedBatches
from studygpt.errors import StudyGPTError
from studygpt.inspection.attention import manual_attention_path
from studygpt.model.transformer import DialogueModel, KVCache, ModelConfig, lm_loss
from tests.conftest import tiny_model

V = 50
ATOL = 1e-5  # fp32 下不同计算顺序带来的误差远小于它


def test_causality_future_token_does_not_change_past_logits():
    model = tiny_model(V).eval()
    x = torch.randint(0, V, (1, 12))
    y = x.clone()
    y[0, 6] = (y[0, 6] + 1) % V  # 改动位置 6
    a, b = model(x), model(y)
    assert torch.allclose(a[0, :6], b[0, :6], atol=ATOL)   # 位置 0..5 不受影响
    assert not torch.allclose(a[0, 6:], b[0, 6:], atol=ATOL)


def test_batch_independence():
    """原项目的 bug：注意力在批次的样本之间计算。这里改样本 1 不能影响样本 0。"""
    model = tiny_model(V).eval()
    x = torch.randint(0, V, (3, 10))
    y = x.clone()
    y[1] = torch.randint(0, V, (10,))
    assert torch.allclose(model(x)[0], model(y)[0], atol=ATOL)


def test_right_padding_gives_same_logits_for_real_tokens():
    model = tiny_model(V).eval()
    real = torch.randint(0, V, (1, 7))
    padded = torch.cat([real, torch.full((1, 5), 3)], dim=1)
    mask = torch.tensor([[1] * 7 + [0] * 5])
    out = model(padded, attention_mask=mask)
    assert torch.allclose(out[0, :7], model(real)[0], atol=ATOL)
    assert torch.isfinite(out).all()  # 填充位置也不能出 NaN


def test_packed_row_equals_each_dialogue_alone():
    model = tiny_model(V).eval()
    a, b = torch.randint(0, V, (1, 5)), torch.randint(0, V, (1, 8))
    row = torch.cat([a, b], dim=1)
    doc_ids = torch.tensor([[0] * 5 + [1] * 8])
    positions = torch.tensor([list(range(5)) + list(range(8))])
    out = model(row, doc_ids=doc_ids, positions=positions)
    assert torch.allclose(out[0, :5], model(a)[0], atol=ATOL)
    assert torch.allclose(out[0, 5:], model(b)[0], atol=ATOL)


def test_kv_cache_matches_full_forward():
    model = tiny_model(V).eval()
    x = torch.randint(0, V, (1, 20))
    full = model(x)
    cache = KVCache(model.config, 1, "cpu", torch.float32)
    steps = [model(x[:, :8], cache=cache)]              # prefill 8 个
    steps.append(model(x[:, 8:11], cache=cache))        # 一次 3 个（需要带偏移的因果掩码）
    for t in range(11, 20):                             # 再逐个
        steps.append(model(x[:, t:t + 1], cache=cache))
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=ATOL)


def test_manual_attention_equals_sdpa():
    model = tiny_model(V).eval()
    x = torch.randint(0, V, (2, 9))
    mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3])
    sdpa = model(x), model(x, attention_mask=mask)
    with manual_attention_path(model) as recorded:  # 前向钩子：每层改走 manual_attention
        manual = model(x), model(x, attention_mask=mask)
    assert torch.allclose(sdpa[0], manual[0], atol=ATOL)
    assert torch.allclose(sdpa[1][1, :6], manual[1][1, :6], atol=ATOL)
    assert not any(layer.attention._forward_hooks for layer in model.layers)  # 出了 with 钩子就摘掉
    weights = recorded[0]
    assert weights.shape == (2, 4, 9, 9) and torch.allclose(weights.sum(-1), torch.ones(2, 4, 9), atol=ATOL)


def test_loss_at_init_is_close_to_ln_vocab():
    model = tiny_model(1000, d_model=64)
    x = torch.randint(0, 1000, (4, 32))
    loss, n = lm_loss(model, {"input_ids": x, "labels": x})
    assert n == 4 * 31
    assert abs(loss.item() - math.log(1000)) < 0.3


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = tiny_model(V, d_model=64)
    x = torch.randint(0, V, (4, 24))
    batch = {"input_ids": x, "labels": x}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(200):
        loss, _ = lm_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


def test_packed_batches_loss_only_on_labels(tokenizer):
    from studygpt.batches.windows import build_windows
    from tests.conftest import DIALOGUES
    windows = build_windows(DIALOGUES, tokenizer, 64)
    batches = PackedBatches(windows, batch_size=1, seq_len=64, pad_id=3, shuffle=False)
    batch = next(iter(batches))
    n_labels = int((batch["labels"] != -100).sum())
    model = tiny_model(tokenizer.vocab_size)
    _, n = lm_loss(model, batch)
    assert n == n_labels  # 每个助手词元都被它前一个位置预测到（助手词元从不在行首）


def test_config_validation_is_clear():
    with pytest.raises(StudyGPTError, match="整除"):
        ModelConfig(vocab_size=10, d_model=30, n_head=4)
    with pytest.raises(StudyGPTError, match="vocab_size"):
        DialogueModel()


def test_seed_style_constructor_and_breakdown():
    model = DialogueModel(120, d_model=64, n_head=8, n_layers=2)
    assert model(torch.randint(0, 120, (2, 5))).shape == (2, 5, 120)
    parts = dict(model.param_breakdown())
    assert parts["合计 (total)"] == model.num_params()
    assert sum(v for k, v in model.param_breakdown()[:-1]) == model.num_params()


def test_lm_loss_sum_is_mean_times_label_count():
    model = tiny_model(V)
    x = torch.randint(0, V, (3, 12))
    labels = x.masked_fill(torch.rand(3, 12) < 0.5, -100)
    mean, n = lm_loss(model, {"input_ids": x, "labels": labels})
    total, n_sum = lm_loss(model, {"input_ids": x, "labels": labels}, reduction="sum")
    assert n == n_sum > 0 and torch.allclose(total, mean * n, rtol=1e-5)
