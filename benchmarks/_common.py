"""基准脚本共用的小工具 (shared helpers for the benchmark scripts)：机器描述、实测峰值、内存、结果文件。

每个基准都把"这台机器自己的上限"和自己的数字放在一起打印：
- 矩阵乘法峰值 (matmul peak)：大方阵乘法的 GFLOP/s，取 n = 1024/2048/3072 中最大的一个，线程数与基准相同；
- 内存带宽 (memory bandwidth)：一次大张量复制，GB/s = (读 + 写的字节数) / 时间。
这样不同机器上的结果可以直接读成"离硬件上限还有多远"，而不是一个孤立的 tokens/s。

结果以 JSON 行 (JSON lines) 追加到结果文件，每行带日期、机器描述与 CPU 类型。结果文件在哪里（results_path）：
- 课程让学习者运行的脚本默认写进 runs/benchmarks/（runs/ 不进 git：跑完课程里的命令，`git status` 仍然干净）；
- 加 --record 才追加到仓库里的 benchmarks/results/（维护者更新文档里的数字时用，提交前看一眼）。
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # 测的是这个检出里的 studygpt，而不是别处 pip 安装的那一份

from studygpt.hardware import cpu_has_bf16_instructions, describe_machine, matmul_gflops  # noqa: E402

RESULTS = Path(__file__).parent / "results"   # --record：仓库里记录的结果（进 git）
LOCAL_RESULTS = Path("runs/benchmarks")        # 默认：当前目录下的 runs/benchmarks/（不进 git）
SHARED_DATA = REPO.parent / "shared" / "data"  # ../shared/data：共享语料，只读，绝不复制进仓库


# ===== 1. 机器与负载 (machine and load) =====
def cpu_kind() -> str:
    """CPU 的类型：有没有原生 bf16 指令，以及 PyTorch 用的向量指令集 (AVX2 / AVX512 …)。"""
    simd = torch.backends.cpu.get_cpu_capability()
    if cpu_has_bf16_instructions():
        return f"{simd} + 原生 bf16 (AVX512_BF16/AMX)"
    return f"{simd}，没有原生 bf16 指令 (no AVX512_BF16/AMX: bf16 matmuls are emulated, ~100x slower)"


def load_average() -> float:
    """最近 1 分钟的平均负载 (1-minute load average)；读不到时返回 -1。"""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return -1.0


def code_version() -> str:
    """当前代码的提交号；studygpt/ 里有未提交的改动时加 "+dirty"，这样结果文件里的数字能对上代码。"""
    try:
        run = lambda *cmd: subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        head = run("git", "rev-parse", "--short", "HEAD")
        return head + ("+dirty" if run("git", "status", "--porcelain", "studygpt") else "") if head else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def print_machine(title: str) -> dict:
    """打印标题、机器与负载；机器忙时提醒"数字不可信"。返回写进结果文件的机器信息。"""
    load = load_average()
    info = {"machine": describe_machine(), "cpu_kind": cpu_kind(), "threads": torch.get_num_threads(),
            "load_1min_at_start": load,
            "code": code_version(), "note": os.environ.get("BENCH_NOTE", "")}
    print(f"== {title} ==")
    print(f"机器 (machine): {info['machine']}")
    print(f"CPU 类型 (CPU kind): {info['cpu_kind']}")
    if load > 0.7:
        print(f"注意 (warning): 1 分钟负载 {load:.2f} > 0.7，别的进程在用 CPU，数字会偏低；请在空闲时重测。")
    return info


# ===== 2. 硬件上限 (hardware limits, measured in this run) =====
def matmul_peak(dtype: torch.dtype = torch.float32, device: str = "cpu", sizes=(1024, 2048, 3072),
                seconds: float = 1.0) -> tuple[float, int]:
    """大方阵乘法的实测峰值：每个 n 反复乘 seconds 秒，取最快的一次；返回 (最大 GFLOP/s, 取到它的 n)。

    和基准用同样的线程数，在同一次运行里测。取"最快的一次"而不是平均：这台虚拟机的 CPU 偶尔被别人占用，
    最快的一次才是硬件真正能做到的；这样算出的 MFU 偏保守。
    """
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    best = (0.0, 0)
    for n in sizes:
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
        c = torch.empty(n, n, device=device, dtype=dtype)
        torch.mm(a, b, out=c)  # 预热 (warm-up)
        sync()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            sync()
            best = max(best, (2 * n**3 / (time.perf_counter() - t0) / 1e9, n))
    return best


def fast_bf16(device: str = "cpu") -> tuple[bool, str]:
    """这台机器的 bf16 矩阵乘法快不快，以及理由。AVX2 的 CPU 上绝不真的去跑 bf16（太慢）。"""
    if device == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "CUDA GPU 支持 bf16" if ok else "这块 GPU 不支持 bf16"
    if not cpu_has_bf16_instructions():
        return False, "CPU 没有 AVX512_BF16/AMX 指令，bf16 矩阵乘法要软件模拟（约慢 100 倍），跳过 (skipped)"
    fp32, bf16 = matmul_gflops(torch.float32, 1024), matmul_gflops(torch.bfloat16, 1024)
    if bf16 > 1.2 * fp32:
        return True, f"CPU 有 bf16 指令，实测 bf16 {bf16:.0f} vs fp32 {fp32:.0f} GFLOP/s"
    return False, f"CPU 有 bf16 指令但实测不快（bf16 {bf16:.0f} vs fp32 {fp32:.0f} GFLOP/s），跳过 (skipped)"


def memory_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """大张量复制的带宽 (GB/s)：每次复制读 megabytes、写 megabytes，取最快的一次。"""
    n = megabytes * 2**20 // 4
    src, dst = torch.ones(n), torch.empty(n)
    dst.copy_(src)  # 预热：让页面真正分配好 (touch the pages)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * n * 4 / best / 1e9


# ===== 3. 内存 (memory) =====
def reset_peak_rss() -> None:
    """先把已释放的内存还给系统，再把本进程的峰值常驻内存 (VmHWM) 重置为当前值（Linux）：
    之后的 peak_rss_mb() 只算这之后的峰值，前一种设置留下的内存不会算到下一种头上。"""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc 默认把释放的内存留着备用；这里还给系统
    except (OSError, AttributeError):
        pass
    try:
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")
    except OSError:
        pass  # 非 Linux：peak_rss_mb() 退回整个进程的峰值


def rss_mb() -> float:
    """本进程当前的常驻内存 (resident set size, MB)；读不到时返回 0。"""
    try:
        return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{os.getpid()}/status").read_text()).group(1)) / 1024
    except (OSError, AttributeError):
        return 0.0


def peak_rss_mb() -> float:
    """本进程的峰值常驻内存 (peak resident set size, MB)。"""
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{os.getpid()}/status").read_text())
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux 上单位是 KB


# ===== 4. 表格与结果文件 (tables and result files) =====
def print_table(headers: list[str], rows: list[list]) -> None:
    """等宽对齐地打印一张表 (a plain aligned table)。"""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    for k, row in enumerate(cells):
        print("  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _width(text: str) -> int:
    """终端里的显示宽度：汉字占两格。"""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def results_path(name: str, record: bool) -> Path:
    """结果文件 NAME 的路径：record（命令行的 --record）时是 benchmarks/results/NAME，否则是 runs/benchmarks/NAME。"""
    return (RESULTS if record else LOCAL_RESULTS) / name


def append_results(name: str, machine: dict, records: list[dict], *, record: bool) -> Path:
    """把每条记录加上日期与机器信息，追加到结果文件 NAME.jsonl（位置见 results_path：record 时才进 git）。

    环境变量 BENCH_DRY_RUN=1 时不写（检查基准脚本本身的冒烟测试用，例如 gpu_check.py --smoke）。"""
    path = results_path(f"{name}.jsonl", record)
    if os.environ.get("BENCH_DRY_RUN") == "1":
        print(f"BENCH_DRY_RUN=1：不追加到 {path}")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with path.open("a", encoding="utf-8") as f:
        for entry in records:
            f.write(json.dumps({"date": date, **machine, **entry}, ensure_ascii=False) + "\n")
    print(f"结果已追加到 (appended to) {where(path, record)}")
    return path


def where(path: Path, record: bool) -> str:
    """打印用：结果文件的路径（仓库里的写成相对仓库根目录的）；没有 --record 时提醒它不进 git。"""
    if record:
        return str(path.relative_to(REPO))
    return f"{path}（runs/ 不进 git；加 --record 才写进仓库的 benchmarks/results/）"
