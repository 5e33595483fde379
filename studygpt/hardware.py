"""设备与精度 (device and precision)：由机器实际能做什么来决定，绝不凭假设。

为什么要测：同样是 CPU，带 AVX-512-BF16 的 CPU 上 bf16 矩阵乘法比 fp32 快约 2 倍；
只有 AVX2 的 CPU（多数笔记本）上 bf16 要靠软件模拟，慢 100 倍以上。
所以 CPU 上先看指令集标志 (CPU flags)，有 bf16 指令才去实际计时一个小矩阵乘法，快才用。
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Precision:
    """训练用的精度：autocast 的数据类型（None = 纯 fp32），是否需要梯度缩放，以及选择的理由。"""
    dtype: torch.dtype | None
    use_scaler: bool
    reason: str

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def choose_precision(device: torch.device, use_amp: bool = True) -> Precision:
    """决定混合精度 (mixed precision) 用不用、用哪种，并给出一句理由（训练开始时打印）。"""
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
