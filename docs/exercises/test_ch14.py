"""第 14 章练习的测试：pytest docs/exercises -k ch14。参照答案是训练时真正用的 studygpt/posttrain/dpo.py。"""
import math

import torch
from exercise_loader import load

from studygpt.posttrain.dpo import chosen_nll, dpo_loss

ex = load("ch14_dpo")


def test_sequence_logprob_sums_only_the_reply():
    logps = torch.tensor([[-0.5, -1.0, -2.0, -0.25], [-3.0, -0.1, -0.2, -0.3]])
    mask = torch.tensor([[False, True, True, False], [False, False, True, True]])
    got = ex.sequence_logprob(logps, mask)
    assert got.shape == (2,), f"应返回每行一个数 (B,)，你的形状是 {tuple(got.shape)}"
    assert torch.allclose(got, torch.tensor([-3.0, -0.5])), f"应为 [-3.0, -0.5]（只加回答的位置），你的是 {got.tolist()}"


def test_dpo_loss_matches_studygpt_and_is_log2_when_policy_equals_reference():
    torch.manual_seed(0)
    ref = torch.randn(4), torch.randn(4)
    same = ex.dpo_loss(ref[0], ref[1], ref[0], ref[1], 0.1)
    assert abs(float(same) - math.log(2)) < 1e-6, f"策略 = 参考时损失应为 log 2 ≈ 0.6931，你的是 {float(same):.4f}"
    policy = ref[0] + torch.randn(4), ref[1] + torch.randn(4)
    for beta in (0.1, 0.5, 2.0):
        expected, _ = dpo_loss(policy[0], policy[1], ref[0], ref[1], beta)
        got = ex.dpo_loss(policy[0], policy[1], ref[0], ref[1], beta)
        assert torch.allclose(got, expected, atol=1e-6), f"β={beta}: 应为 {float(expected):.4f}，你的是 {float(got):.4f}"


def test_chosen_nll_is_the_mean_loss_per_token_of_each_reply():
    logps = torch.tensor([-6.0, -1.0])            # 第一条 3 个词元、第二条 1 个词元
    labels = torch.full((2, 5), -100)
    labels[0, 1:4] = 7                            # 与 studygpt 的 labels 布局相同：第 t+1 列是第 t 个位置要预测的
    labels[1, 4] = 7
    expected = float(chosen_nll(logps, labels))   # = ((6/3) + (1/1)) / 2 = 1.5
    got = float(ex.chosen_nll(logps, torch.tensor([3, 1])))
    assert abs(got - expected) < 1e-6, (f"应为 {expected:.4f}（每条先除以自己的词元数：6/3 与 1/1，再平均），你的是 {got:.4f}"
                                        + ("；看起来是把所有词元放在一起平均了 (7/4)" if abs(got - 1.75) < 1e-6 else ""))
