"""设备与精度 (device and precision)：由机器实际能做什么来决定，绝不凭假设。

为什么要测：同样是 CPU，带 AVX-512-BF16 的 CPU 上 bf16 矩阵乘法比 fp32 快约 2 倍；
只有 AVX2 的 CPU（多数笔记本）上 bf16 要靠软件模拟，慢 100 倍以上。
所以 CPU 上先看指令集标志 (CPU flags)，有 bf16 指令才去实际计时一个小矩阵乘法，快才用。
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch


def pick_device(name: str | None = None) -> torch.device:
    """name 为空时自动选择：cuda → mps → cpu。"""
    if name and name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpuinfo_field(name: str) -> str | None:
    """Linux 上 /proc/cpuinfo 里第一个名为 name 的字段（如 "flags"、"model name"）；读不到（macOS/Windows）时为 None。"""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """指令集标志 (CPU flags)；读不到时返回空集合。"""
    return set((cpuinfo_field("flags") or "").split())


def cpu_has_bf16_instructions() -> bool:
    """CPU 有没有原生 bf16 矩阵指令（AVX512_BF16 或 AMX）。"""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def has_cpp_compiler() -> bool:
    """有没有 C++ 编译器 (g++ / c++)：torch.compile 在 CPU 上要用它编译生成的内核。"""
    return shutil.which("g++") is not None or shutil.which("c++") is not None


def matmul_gflops(dtype: torch.dtype, n: int = 512, device="cpu", seconds: float = 0.2) -> float:
    """计时 n×n×n 的矩阵乘法，返回每秒十亿次浮点运算 (GFLOP/s)。一次乘法 = 2·n³ 次运算。"""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    a @ b  # 预热 (warm-up)
    sync()
    runs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        runs += 1
    sync()
    return 2 * n ** 3 * runs / (time.perf_counter() - t0) / 1e9


def small_step_rate(seconds: float = 0.15) -> float:
    """每秒能做几次"一小段像训练的计算"：(64, 128, 256) 乘 256×256 的矩阵，再 relu、softmax。

    小矩阵、一个接一个的算子，线程们在每个算子末尾互相等——和小模型的训练一样。别的程序占着核时，
    多线程正是在这里吃亏（大矩阵乘法反而看不太出来：同样的机器上 512×512 只差 1.3 倍，这里差 2 倍）。
    """
    x, w = torch.randn(64, 128, 256), torch.randn(256, 256)
    (x @ w).relu_().softmax(-1)  # 预热 (warm-up)
    runs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        (x @ w).relu_().softmax(-1)
        runs += 1
    return runs / (time.perf_counter() - t0)


@dataclass
class FewerThreads:
    """别的程序占着 CPU 时，少用几个线程反而更快：threads 是实测更快的线程数，reason 是一句带数字的理由。"""
    threads: int
    reason: str


def fewer_threads_if_faster(margin: float = 1.3) -> FewerThreads | None:
    """实测当前线程数 N 与更少的线程数（1，N ≥ 4 时还有 N/2）下 small_step_rate（各 0.15 秒），量完恢复 N。

    为什么：PyTorch 默认每个核一个线程，每个矩阵乘法都要等所有线程做完。别的程序占着一个核时，
    落在那个核上的线程拖住了全部线程——2 核机器上实测训练慢了约 6 倍。更少的线程快 margin 倍以上时返回它，否则 None。
    """
    n = torch.get_num_threads()
    if n == 1:
        return None
    speeds = {}
    try:
        for threads in sorted({n, max(1, n // 2), 1}, reverse=True):
            torch.set_num_threads(threads)
            speeds[threads] = small_step_rate()
    finally:
        torch.set_num_threads(n)
    best = max(speeds, key=speeds.get)
    if best == n or speeds[best] < margin * speeds[n]:
        return None
    return FewerThreads(best, f"别的程序正在用 CPU：一小段像训练的计算，实测 {best} 个线程每秒 {speeds[best]:.0f} 次，"
                              f"{n} 个线程只有 {speeds[n]:.0f} 次")


def use_fewer_threads_if_faster() -> FewerThreads | None:
    """fewer_threads_if_faster 量出更快的线程数时就改用它（torch.set_num_threads），返回那个结果；否则不动、返回 None。"""
    faster = fewer_threads_if_faster()
    if faster is not None:
        torch.set_num_threads(faster.threads)
    return faster


def set_threads(threads: int | None, log: Callable[[str], None], auto: bool = False) -> int | None:
    """CPU 上用几个线程，返回要记进运行设置的线程数（None = PyTorch 的默认，每个核一个）。

    threads 给了就用它；否则实测一下，别的程序占着 CPU、少用线程更快时说出来。auto=True（按时间训练的
    快速上手）时直接改用更快的线程数（返回它，续训沿用）；平常的训练只给建议：线程数会改变浮点求和的顺序，
    同样的设置应当给出同样的数，所以要你自己决定（--threads）。
    """
    if threads:
        torch.set_num_threads(threads)
        log(f"线程 (threads): {threads}（--threads）")
        return threads
    if auto:
        if (faster := use_fewer_threads_if_faster()) is not None:
            log(f"线程 (threads): {faster.reason}；按时间训练，改用 {faster.threads} 个线程")
            return faster.threads
    elif (faster := fewer_threads_if_faster()) is not None:
        log(f"线程 (threads): {faster.reason}；加 --threads {faster.threads} 会更快")
    return None


def prepare_device(name: str | None, threads: int | None, log: Callable[[str], None],
                   auto_threads: bool = False) -> tuple[torch.device, int | None]:
    """训练之前把机器准备好：选设备（pick_device）；是 CPU 时再定线程数（set_threads）。返回 (设备, 线程数)。"""
    device = pick_device(name)
    if device.type == "cpu":
        threads = set_threads(threads, log, auto_threads)
    return device, threads


@dataclass
class Precision:
    """训练用的精度：autocast 的数据类型（None = 纯 fp32），是否需要梯度缩放，以及选择的理由。"""
    dtype: torch.dtype | None
    use_scaler: bool
    reason: str
    machine: str = ""  # 在哪台机器上选的（describe_machine）：报告里和精度写在同一行

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def choose_precision(device: torch.device, use_amp: bool = True) -> Precision:
    """决定混合精度 (mixed precision) 用不用、用哪种，并给出一句理由（训练开始时打印）；记下是哪台机器。"""
    return dataclasses.replace(decide_precision(device, use_amp), machine=describe_machine())


def decide_precision(device: torch.device, use_amp: bool) -> Precision:
    if not use_amp:
        return Precision(None, False, "use_amp=False：使用 fp32")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, False, "CUDA GPU 支持 bf16：autocast bf16")
        return Precision(torch.float16, True, "CUDA GPU 不支持 bf16：autocast fp16 + GradScaler（防止梯度下溢）")
    if device.type != "cpu":
        return Precision(None, False, f"{device.type} 上使用 fp32")
    if not cpu_has_bf16_instructions():
        return Precision(None, False, "CPU 没有 AVX512_BF16/AMX 指令，bf16 会慢 100 倍以上：使用 fp32")
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    if bf16 > 1.2 * fp32:
        return Precision(torch.bfloat16, False, f"CPU 有 bf16 指令，实测 bf16 {bf16:.0f} vs fp32 {fp32:.0f} GFLOP/s：autocast bf16")
    return Precision(None, False, f"CPU 有 bf16 指令但实测不快（bf16 {bf16:.0f} vs fp32 {fp32:.0f} GFLOP/s）：使用 fp32")


def describe_machine() -> str:
    """一行机器描述，写进报告：CPU 型号与能力、线程数、GPU。"""
    cpu = cpuinfo_field("model name") or "unknown CPU"
    kind = "AVX-512-BF16" if cpu_has_bf16_instructions() else torch.backends.cpu.get_cpu_capability()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu} ({kind}), {torch.get_num_threads()} 线程 (threads), torch {torch.__version__}{gpu}"
