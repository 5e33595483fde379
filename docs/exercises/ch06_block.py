"""第 6 章练习：Transformer 块的三个零件。检查：pytest docs/exercises -k ch06

对照：studygpt/model/transformer.py 的 RMSNorm、MLP (SwiGLU)、Block。
"""
from typing import Callable

import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """练习 6.1：RMSNorm。x (..., C)，weight (C,)。

    x 除以"最后一维平方的平均再加 eps 后开方"，再逐维乘以 weight：x / sqrt(mean(x²) + eps) · weight。
    """
    raise NotImplementedError("练习 6.1：RMSNorm")


def swiglu(x: torch.Tensor, w1: torch.Tensor, w3: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """练习 6.2：SwiGLU 前馈网络：(silu(x @ w1ᵀ) ⊙ (x @ w3ᵀ)) @ w2ᵀ。

    w1、w3 的形状 (H, C)，w2 的形状 (C, H)（和 nn.Linear.weight 一样是 (输出, 输入)）。x (..., C) → (..., C)。
    """
    raise NotImplementedError("练习 6.2：SwiGLU")


def pre_norm_residual(x: torch.Tensor, norm: Callable, sublayer: Callable) -> torch.Tensor:
    """练习 6.3：前置归一化的残差连接 (pre-norm residual)：先归一化，再过子层，最后加回原来的 x。"""
    raise NotImplementedError("练习 6.3：前置归一化 + 残差 (pre-norm residual)")
