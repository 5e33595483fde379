"""第 11 章练习的参考答案。"""
import torch


def permute_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    hs = w.shape[0] // n_head
    # (nh, 2, hs/2, C)：第 1 维是"前一半/后一半"；换成 (nh, hs/2, 2, C)，每对的两行就挨在一起了
    return w.reshape(n_head, 2, hs // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def rope_adjacent_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    a, b = x[:, 0::2], x[:, 1::2]  # 每对的第一维、第二维，各 (T, hs/2)
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).reshape(x.shape)
