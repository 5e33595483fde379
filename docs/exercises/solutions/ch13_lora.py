"""第 13 章参考答案：LoRA 的前向、合并与参数量。"""
import torch


def lora_forward(x: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    scale = alpha / A.shape[0]
    return x @ W.T + (x @ A.T) @ B.T * scale       # (..., in) → (..., r) → (..., out)


def merge_weight(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    return W + (B @ A) * (alpha / A.shape[0])      # (out, r) @ (r, in) → (out, in)


def lora_param_count(d_in: int, d_out: int, rank: int) -> tuple[int, float]:
    count = rank * d_in + d_out * rank             # A: r × in，B: out × r
    return count, count / (d_in * d_out)
