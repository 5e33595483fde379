"""第 15 章练习的测试：pytest docs/exercises -k ch15。参照答案是训练时真正用的 studygpt/posttrain/rl.py。"""
import torch
from exercise_loader import load

from studygpt.posttrain import rl

ex = load("ch15_rl")


def test_group_advantages_match_studygpt():
    rewards = torch.tensor([1., 0., 0., 0., 1., 1., 1., 1., 0., 1., 0., 1.])
    got = ex.group_advantages(rewards, 4)
    expected = rl.group_advantages(rewards, 4)
    assert got.shape == expected.shape, f"形状应为 {tuple(expected.shape)}，你的是 {tuple(got.shape)}"
    means = got.view(3, 4).mean(dim=1)
    assert torch.allclose(means, torch.zeros(3), atol=1e-5), f"每组的优势平均应为 0，你的是 {means.tolist()}"
    assert torch.allclose(got, expected, atol=1e-5), \
        sample_std_hint(rewards, 4, got) + f"应为 {rounded(expected)}，你的是 {rounded(got)}"
    assert torch.equal(got[4:8], torch.zeros(4)), "全组奖励相同（都对）时优势应全为 0"


def rounded(x: torch.Tensor) -> list[float]:
    return [round(v, 4) for v in x.tolist()]


def sample_std_hint(rewards: torch.Tensor, group_size: int, got: torch.Tensor) -> str:
    """常见错误：torch 的 std 默认是样本标准差（除以 G−1，unbiased=True）；GRPO 用总体标准差（除以 G）。"""
    groups = rewards.view(-1, group_size)
    sample = ((groups - groups.mean(dim=1, keepdim=True)) / (groups.std(dim=1, keepdim=True) + 1e-4)).view(-1)
    if torch.allclose(got, sample, atol=1e-4):
        return "看起来你用了样本标准差（torch 默认 unbiased=True，除以 G−1），这里要总体标准差 std(..., unbiased=False)，除以 G。"
    return ""


def test_kl_k3_matches_studygpt():
    logp = torch.log(torch.tensor([0.2, 0.5, 0.7, 0.9]))
    assert torch.equal(ex.kl_k3(logp, logp), torch.zeros(4)), "策略 = 参考时 KL 应为 0"
    ref = torch.log(torch.tensor([0.4, 0.4, 0.8, 0.6]))
    assert torch.allclose(ex.kl_k3(logp, ref), rl.kl_k3(logp, ref)), "k3 = exp(Δ) − Δ − 1，Δ = ref_logp − logp"


def test_clipped_objective_matches_studygpt():
    logp = torch.log(torch.tensor([0.2, 0.5, 0.7, 0.9]))
    old = torch.log(torch.tensor([0.1, 0.5, 0.9, 0.6]))
    for sign in (1.0, -1.0):
        adv = sign * torch.tensor([1.0, 2.0, 0.5, 1.0])
        got, expected = ex.clipped_objective(logp, old, adv, 0.2), rl.clipped_objective(logp, old, adv, 0.2)
        assert torch.allclose(got, expected, atol=1e-6), f"A 的符号 {sign:+.0f}：应为 {expected.tolist()}，你的是 {got.tolist()}"
