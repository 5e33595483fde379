"""数据并行 (data parallelism)：用 PyTorch 自己的分布式引擎 (torch.distributed + DDP)，不自己造轮子。

启动：`torchrun --nproc_per_node=N -m studygpt train …`。torchrun 为每个进程设置环境变量
RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT，这里读它们并建立进程组：
GPU 上用 nccl，CPU 上用 gloo。每个进程有一份完整的模型，处理全局批次里属于自己的那几行；
反向传播时 DDP 把各进程的梯度取平均 (all-reduce)，于是每个进程做出完全相同的更新。
详见 docs/zh/distributed.md。
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from studygpt.errors import StudyGPTError


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """只有 0 号进程打印日志、画进度条、写指标和检查点。"""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def current(cls) -> "DistInfo":
        """已建立进程组时返回本进程的信息，否则是单进程。"""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), int(os.environ.get("LOCAL_RANK", dist.get_rank())), dist.get_world_size())
        return cls()

    def all_reduce_sum(self, values: list[float], device) -> list[float]:
        """把几个数在所有进程间求和；单进程时原样返回。"""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def all_reduce_max(self, value: float, device) -> float:
        """所有进程里最大的那个数（如"有没有哪个进程要停"）；单进程时原样返回。"""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t)


def setup_distributed(device_name: str | None = None) -> tuple[DistInfo, torch.device | None]:
    """若由 torchrun 启动（WORLD_SIZE > 1）就建立进程组，返回 (进程信息, 本进程的设备)；否则什么都不做。"""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), None
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise StudyGPTError(f"WORLD_SIZE={world} 但缺少环境变量 {missing}；请用 "
                            "`torchrun --nproc_per_node=N -m studygpt train …` 启动，不要手动设置 WORLD_SIZE。")
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), world)
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        if info.local_rank >= torch.cuda.device_count():
            raise StudyGPTError(f"本机只有 {torch.cuda.device_count()} 块 GPU，却启动了 LOCAL_RANK={info.local_rank}；"
                                "请让 --nproc_per_node 不超过 GPU 数。")
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info, device


current = DistInfo.current  # distributed.current()：本进程的 DistInfo


def cleanup() -> None:
    """训练正常结束后拆掉进程组。先等所有进程都走到这里 (barrier)：一个进程先拆、别的进程还在收发时，
    gloo 偶尔会 abort（"terminate called without an active exception"）。"""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
