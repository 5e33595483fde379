"""第 4 章参考答案：旋转位置编码 RoPE。"""
import torch


def rope_angles(head_size: int, max_len: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / base ** (torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)  # (hs/2,)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)                # (T, hs/2)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)  # 前一半与后一半配对
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
