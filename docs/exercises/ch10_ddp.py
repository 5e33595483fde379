"""第 10 章练习：数据并行 (data parallelism, DDP) 的三个零件。检查：pytest docs/exercises -k ch10

N 个进程各有一份完整的模型，各算全局批次里自己那几行的梯度，再把梯度取平均 (all-reduce)。
对照：studygpt/batches/packing.py 的 PackedBatches（分行）、studygpt/training/trainer.py 的 train_step（按词元数加权），
以及 docs/zh/distributed.md。
"""
import torch


def rows_for_rank(batch_size: int, rank: int, world_size: int) -> range:
    """练习 10.1：全局批次有 batch_size 行，平均分给 world_size 个进程；第 rank 个进程拿连续的哪几行？

    batch_size 不能被 world_size 整除时抛出 ValueError。例：rows_for_rank(8, 1, 4) → range(2, 4)。
    """
    raise NotImplementedError("练习 10.1：每个进程分到哪几行 (rows for each rank)")


def all_reduce_mean(grads: list[torch.Tensor]) -> torch.Tensor:
    """练习 10.2：模拟 all-reduce 求平均：grads[r] 是第 r 个进程的梯度（形状相同），返回它们的平均。"""
    raise NotImplementedError("练习 10.2：梯度取平均 (all-reduce mean)")


def loss_scale(n_local: int, n_total: int, world_size: int) -> float:
    """练习 10.3：每个进程的平均损失乘以多少，DDP 把梯度除以 world_size 取平均之后，
    才正好等于"全局所有被学习词元的平均损失"的梯度？n_local 是本进程的被学习词元数，n_total 是所有进程之和。"""
    raise NotImplementedError("练习 10.3：按词元数加权 (token-weighted loss scale)")
