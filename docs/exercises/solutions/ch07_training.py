"""第 7 章参考答案：预热 + 余弦、梯度裁剪、梯度累加的权重。"""
import math

import torch


def warmup_cosine(progress: float, lr: float, warmup: float, min_ratio: float) -> float:
    if progress < warmup:
        return lr * progress / warmup
    t = min((progress - warmup) / (1 - warmup), 1.0)
    floor = min_ratio * lr
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * t))


def clip_by_global_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    total = torch.sqrt(sum(g.pow(2).sum() for g in grads))  # 所有梯度当作一个长向量的长度
    scale = min(1.0, max_norm / (float(total) + 1e-6))
    return [g * scale for g in grads]


def accumulation_weights(label_counts: list[int]) -> list[float]:
    total = sum(label_counts)
    return [n / total for n in label_counts]  # 词元多的小批次分量重
