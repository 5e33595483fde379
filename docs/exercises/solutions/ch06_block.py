"""第 6 章参考答案：RMSNorm、SwiGLU、前置归一化残差。"""
from typing import Callable

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def swiglu(x: torch.Tensor, w1: torch.Tensor, w3: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    return (F.silu(x @ w1.T) * (x @ w3.T)) @ w2.T  # 门 (gate) ⊙ 上投影 (up)，再降回 C 维


def pre_norm_residual(x: torch.Tensor, norm: Callable, sublayer: Callable) -> torch.Tensor:
    return x + sublayer(norm(x))
