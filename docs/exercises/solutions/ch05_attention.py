"""第 5 章参考答案：手写因果自注意力。"""
import math

import torch


def causal_mask(T: int) -> torch.Tensor:
    return torch.ones(T, T, dtype=torch.bool).tril()  # 下三角：j ≤ i


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])       # (B, nh, T, T)
    scores = scores.masked_fill(~causal_mask(T).to(q.device), float("-inf"))
    return scores.softmax(dim=-1) @ v                                # (B, nh, T, hs)
