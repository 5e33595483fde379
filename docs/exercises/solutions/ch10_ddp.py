"""第 10 章参考答案：分行、梯度平均、按词元数加权。"""
import torch


def rows_for_rank(batch_size: int, rank: int, world_size: int) -> range:
    if batch_size % world_size:
        raise ValueError(f"batch_size={batch_size} 不能被 world_size={world_size} 整除")
    share = batch_size // world_size
    return range(rank * share, (rank + 1) * share)


def all_reduce_mean(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(grads).mean(dim=0)


def loss_scale(n_local: int, n_total: int, world_size: int) -> float:
    # 全局平均 = Σ_r (本进程平均损失 · n_r) / n_total；DDP 又会 ÷ world_size，所以这里先 × world_size
    return n_local * world_size / n_total
