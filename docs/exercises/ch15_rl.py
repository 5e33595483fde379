"""第 15 章练习：GRPO 的三块积木。检查：pytest docs/exercises -k ch15

对照：studygpt/posttrain/rl.py 的 group_advantages、kl_k3、clipped_objective。
"""
import torch


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """练习 15.1：组相对优势。rewards (B,)，每 group_size 个连续的回答是同一道题的一组。

    每组内：A = (r − 组内平均) / (组内标准差 + eps)，标准差用总体标准差（unbiased=False）。返回 (B,)。
    """
    raise NotImplementedError("练习 15.1：组相对优势")


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """练习 15.2：每个词元的 KL(π‖π_ref) 的 k3 估计：exp(Δ) − Δ − 1，其中 Δ = ref_logp − logp。"""
    raise NotImplementedError("练习 15.2：KL 的 k3 估计")


def clipped_objective(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      clip: float) -> torch.Tensor:
    """练习 15.3：PPO 的裁剪代理目标，逐元素：min(ρ·A, clip(ρ, 1−clip, 1+clip)·A)，ρ = exp(logp − old_logp)。"""
    raise NotImplementedError("练习 15.3：裁剪的代理目标")
