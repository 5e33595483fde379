"""第 5 章练习的测试：pytest docs/exercises -k ch05"""
import torch
import torch.nn.functional as F
from exercise_loader import load
from explain import explain_attention, explain_causal_mask, explain_leak

ex = load("ch05_attention")


def test_causal_mask_is_lower_triangular():
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]).bool()
    assert (msg := explain_causal_mask(ex.causal_mask(4), expected)) is None, msg


def test_attention_equals_pytorch_sdpa():
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))  # (B, nh, T, hs)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (msg := explain_attention(ex.attention(q, k, v), q, k, v, expected)) is None, msg


def test_attention_does_not_leak_future_or_other_samples():
    q, k, v = (torch.randn(2, 1, 6, 4) for _ in range(3))
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 4:], v2[:, :, 4:] = torch.randn(2, 1, 2, 4), torch.randn(2, 1, 2, 4)  # 改未来（位置 4、5）
    k2[1], v2[1] = torch.randn(1, 6, 4), torch.randn(1, 6, 4)                        # 改样本 1
    # 两次都用 ex.attention 算：样本 0 的位置 0..3 一点都不变
    assert (msg := explain_leak(ex.attention, q, (k, v), (k2, v2), unchanged=4)) is None, msg
