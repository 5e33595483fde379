"""体检 (doctor)：`studygpt doctor` 一次查完这台机器能不能跑快速上手，每项一行 ✓ / ⚠ / ✗，有问题的再给一行修法。

    ✓ 没问题    ⚠ 提醒：快速上手照样能跑，只是少了点什么（中文字体、浏览器测试、可选组件……）
    ✗ 快速上手跑不起来（Python、torch、必需的包、内存、磁盘）：有 ✗ 时退出码 1，否则 0

精度和线程数由训练用的同一套函数决定（hardware.choose_precision、fewer_threads_if_faster），
所以体检说的和训练真正做的不会不一样。每一项检查 (probe) 自己出了错，也只变成一行 ⚠，不打印 traceback。
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import torch

from studygpt.hardware import (
    choose_precision,
    cpu_flags,
    cpuinfo_field,
    fewer_threads_if_faster,
    pick_device,
)
from studygpt.plotting import FONT_INSTALL_COMMAND, setup_cjk_font
from studygpt.training.optim import TrainConfig

OK, WARN, FAIL = "✓", "⚠", "✗"
MIN_PYTHON = (3, 10)  # 与 pyproject.toml 的 requires-python 相同（tests/test_doctor.py 核对）
MIN_TORCH = (2, 3)    # 与 pyproject.toml 的 "torch>=2.3" 相同
GB, MB = 1024 ** 3, 1024 ** 2
# 快速上手要多少：实测（torch 2.13 CPU 版）`studygpt quickstart --max-steps 4` 的最大常驻内存约 0.55 GB，
# 写出的 runs/quickstart 约 7 MB（检查点连优化器状态）。低于 FAIL 的就别开始了；低于 WARN 的能跑，别的程序一多就可能不够。
RAM_FAIL, RAM_WARN = 0.6 * GB, 1.5 * GB
DISK_FAIL, DISK_WARN = 100 * MB, 1 * GB
RUNS_DIR = Path("runs")  # 快速上手写在当前目录的 runs/quickstart 下
CHROMIUM = Path("/usr/bin/chromium")  # 浏览器测试 (tests/test_serve.py) 用的 Debian chromium
CPU_FEATURES = [("AVX2", {"avx2"}), ("AVX-512", {"avx512f"}), ("AVX512_BF16", {"avx512_bf16"}),
                ("AMX", {"amx_bf16", "amx_tile"})]
# 必需的包里快速上手用不到的几个：缺了只是提醒（要用到它们的命令才会出错），其余缺了是 ✗
NOT_FOR_QUICKSTART = {"fastapi": "studygpt serve", "uvicorn": "studygpt serve", "nltk": "studygpt eval --references"}
EXTRA_USES = {"test": "跑全部测试", "bpe": "字节级 BPE 分词器，第 12 章", "tensorboard": "TensorBoard 曲线",
              "export": "studygpt export，第 11 章"}


@dataclass
class Check:
    """一项检查的结果：标记 ✓/⚠/✗、名字、一句说明，有问题时再加一句修法 (fix)。"""
    mark: str
    name: str
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        return [f"{self.mark} {self.name}：{self.detail}"] + ([f"    修复 (fix)：{self.fix}"] if self.fix else [])


def version_tuple(text: str) -> tuple[int, ...]:
    """"2.13.0+cpu" → (2, 13, 0)；只看 + 之前的数字。"""
    return tuple(int(n) for n in re.findall(r"\d+", text.split("+")[0]))


def gigabytes(n: float) -> str:
    return f"{n / GB:.1f} GB"


# ===== 1. Python、torch 与必需的包 =====
def check_python() -> Check:
    version = platform.python_version()
    need = ".".join(map(str, MIN_PYTHON))
    if sys.version_info[:2] < MIN_PYTHON:
        return Check(FAIL, "Python", f"{version}，太旧了（需要 ≥ {need}）", f"装 Python {need} 或更新的版本，再 pip install -e .")
    return Check(OK, "Python", f"{version}（需要 ≥ {need}）")


def check_torch() -> Check:
    build = (f"CUDA {torch.version.cuda} 版 (CUDA build)" if torch.version.cuda else
             f"ROCm {torch.version.hip} 版 (ROCm build)" if getattr(torch.version, "hip", None) else "CPU 版 (CPU build)")
    need = ".".join(map(str, MIN_TORCH))
    if version_tuple(torch.__version__)[:2] < MIN_TORCH:
        return Check(FAIL, "torch", f"{torch.__version__}，太旧了（需要 ≥ {need}）", "pip install torch==2.13.0")
    if not torch.version.cuda and shutil.which("nvidia-smi"):  # 有 NVIDIA 显卡却装了 CPU 版：训练用不上 GPU
        return Check(WARN, "torch", f"{torch.__version__}，{build}，但这台机器有 NVIDIA GPU（nvidia-smi）",
                     "按 https://pytorch.org/get-started/locally/ 装 CUDA 版的 torch，训练才会用 GPU")
    return Check(OK, "torch", f"{torch.__version__}，{build}")


def installed_version(dist: str) -> str | None:
    """一个包 (distribution) 装了的版本；没装时 None。"""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def project_requirements() -> dict[str, list[str]]:
    """pyproject.toml 里的依赖，从安装信息 (metadata) 读：{"": 必需的包, "export": [...], ...}。

    没用 pip 装时抛 PackageNotFoundError。"""
    groups: dict[str, list[str]] = {"": []}
    for line in metadata.requires("studygpt") or []:
        name = re.match(r"[A-Za-z0-9_.-]+", line).group()
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", line)
        groups.setdefault(extra.group(1) if extra else "", []).append(name)
    return groups


def check_packages() -> list[Check]:
    """必需的包都装了吗（快速上手要用的缺了是 ✗，只有 serve / eval 用的缺了是 ⚠）；
    每组可选组件 (extra) 装了没有（没装是 ⚠，附安装命令）。"""
    try:
        groups = project_requirements()
    except metadata.PackageNotFoundError:
        return [Check(WARN, "依赖 (dependencies)", "studygpt 没有用 pip 安装，查不到它要哪些包",
                      "在仓库根目录运行 pip install -e .")]
    missing = [d for d in groups.pop("") if installed_version(d) is None]
    later = [f"{d}（{NOT_FOR_QUICKSTART[d]} 要用）" for d in missing if d in NOT_FOR_QUICKSTART]
    now = [d for d in missing if d not in NOT_FOR_QUICKSTART]
    mark = FAIL if now else WARN if later else OK
    detail = f"缺少必需的包：{', '.join(now + later)}" if missing else "必需的包都装了"
    checks = [Check(mark, "依赖 (dependencies)", detail, "在仓库根目录运行 pip install -e ." if missing else "")]
    for extra, dists in groups.items():
        name = f"可选组件 [{extra}]" + (f"（{EXTRA_USES[extra]}）" if extra in EXTRA_USES else "")
        absent = [d for d in dists if installed_version(d) is None]
        checks.append(Check(WARN, name, f"没装 {', '.join(absent)}", f'pip install -e ".[{extra}]"') if absent
                      else Check(OK, name, "已安装 (installed)"))
    return checks


# ===== 2. CPU、精度与线程：和训练用同一套函数 =====
def check_cpu() -> Check:
    flags = cpu_flags()
    model = cpuinfo_field("model name") or platform.processor() or platform.machine()
    if not flags:  # macOS / Windows 读不到 /proc/cpuinfo：说 PyTorch 自己看到的能力
        return Check(OK, "CPU", f"{model}；读不到指令集标志，PyTorch 报告 {torch.backends.cpu.get_cpu_capability()}")
    features = " · ".join(f"{name} {OK if flags & names else FAIL}" for name, names in CPU_FEATURES)
    return Check(OK, "CPU", f"{model}，{os.cpu_count()} 个逻辑核；{features}")


def check_precision() -> Check:
    """训练会选的精度和理由：与 TransformerTrainer 一样调用 choose_precision(pick_device(), use_amp)。"""
    device = pick_device()
    precision = choose_precision(device, TrainConfig.use_amp)
    return Check(OK, "精度 (precision)", f"在 {device.type} 上训练用 {precision.name}：{precision.reason}")


def check_threads() -> Check:
    """PyTorch 用几个线程；CPU 上再像快速上手开始训练前那样实测一次（别的程序占着 CPU 时少用几个更快）。"""
    n = torch.get_num_threads()
    if pick_device().type != "cpu":
        return Check(OK, "线程 (threads)", f"{n} 个；训练在 GPU 上，CPU 线程数不要紧")
    faster = fewer_threads_if_faster()
    if faster is None:
        return Check(OK, "线程 (threads)", f"{n} 个（torch.get_num_threads()；快速上手开始训练前还会再量一次）")
    return Check(WARN, "线程 (threads)", f"{n} 个，但{faster.reason}",
                 f"关掉占着 CPU 的程序；快速上手会自动改用 {faster.threads} 个，studygpt train 请加 --threads {faster.threads}")


# ===== 3. 内存与磁盘 =====
def available_ram() -> int | None:
    """还能用的内存（字节）：Linux 读 /proc/meminfo 的 MemAvailable，其他系统试 sysconf；读不到时 None。"""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_ram() -> Check:
    free = available_ram()
    need = f"快速上手约需 {gigabytes(RAM_FAIL)}"
    if free is None:
        return Check(WARN, "内存 (RAM)", f"这个系统上读不到可用内存；{need}", "在任务管理器 / 活动监视器里看一眼可用内存")
    if free < RAM_FAIL:
        return Check(FAIL, "内存 (RAM)", f"只剩 {gigabytes(free)} 可用；{need}", "关掉一些程序（浏览器标签页、别的训练）再试")
    if free < RAM_WARN:
        return Check(WARN, "内存 (RAM)", f"只剩 {gigabytes(free)} 可用；{need}，别的程序一多就可能不够", "关掉一些用不着的程序")
    return Check(OK, "内存 (RAM)", f"{gigabytes(free)} 可用（{need}）")


def check_disk(runs: Path = RUNS_DIR) -> Check:
    """runs/ 将要写在哪个盘上：从它往上找到第一个已经存在的目录，看那里能不能写、还剩多少。"""
    where = next(p for p in [runs, *runs.absolute().parents] if p.exists())
    free = shutil.disk_usage(where).free
    name, need = "磁盘 (disk)", f"快速上手在 {runs}/quickstart 写约 10 MB"
    if not os.access(where, os.W_OK):
        return Check(FAIL, name, f"{where} 不能写入 (not writable)；{need}",
                     "cd 到一个自己能写的目录再运行，或用 quickstart --out 换位置")
    if free < DISK_FAIL:
        return Check(FAIL, name, f"{where} 所在的盘只剩 {free / MB:.0f} MB；{need}",
                     "腾出磁盘空间，或 cd 到别的盘、用 quickstart --out 换位置")
    if free < DISK_WARN:
        return Check(WARN, name, f"{where} 所在的盘只剩 {free / MB:.0f} MB；{need}，训练大一些的模型就不够了",
                     "腾出一些磁盘空间")
    return Check(OK, name, f"{where.absolute()} 所在的盘还剩 {gigabytes(free)}（{need}）")


# ===== 4. 画图、浏览器测试与 GPU =====
def check_font() -> Check:
    font = setup_cjk_font()  # 画图时用的同一个函数：它找得到，图里的汉字就不是方框
    if font is None:
        return Check(WARN, "中文字体 (CJK font)", "没有找到，图里的汉字会显示成方框（macOS / Windows 自带中文字体）",
                     FONT_INSTALL_COMMAND)
    return Check(OK, "中文字体 (CJK font)", font)


def check_browser() -> Check:
    """浏览器测试（tests/test_serve.py 用 Playwright 开 /usr/bin/chromium）能不能跑；跑不了它会跳过，所以只是提醒。"""
    name = "浏览器测试 (browser test)"
    playwright = installed_version("playwright")
    if playwright is None:
        return Check(WARN, name, "没装 playwright，网页聊天的浏览器测试会跳过", 'pip install -e ".[test]"')
    if not CHROMIUM.exists():
        return Check(WARN, name, f"没有 {CHROMIUM}，网页聊天的浏览器测试会跳过", "sudo apt-get install -y chromium")
    return Check(OK, name, f"playwright {playwright} + {CHROMIUM}")


def check_gpu() -> Check:
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_properties(0)
        bf16 = "支持 bf16" if torch.cuda.is_bf16_supported() else "不支持 bf16（训练用 fp16 + GradScaler）"
        return Check(OK, "GPU", f"{gpu.name}，{gigabytes(gpu.total_memory)} 显存，{bf16}"
                                + (f"；共 {torch.cuda.device_count()} 块" if torch.cuda.device_count() > 1 else ""))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return Check(OK, "GPU", "Apple GPU (mps)，训练用 fp32")
    return Check(OK, "GPU", "没有，在 CPU 上训练（快速上手本来就是为 CPU 设计的）")


# ===== 5. 全部跑一遍 =====
PROBES: list[tuple[str, Callable[[], Check | list[Check]]]] = [
    ("Python", check_python), ("torch", check_torch), ("依赖 (dependencies)", check_packages),
    ("CPU", check_cpu), ("精度 (precision)", check_precision), ("线程 (threads)", check_threads),
    ("内存 (RAM)", check_ram), ("磁盘 (disk)", check_disk), ("中文字体 (CJK font)", check_font),
    ("浏览器测试 (browser test)", check_browser), ("GPU", check_gpu),
]


def run_probe(name: str, probe: Callable[[], Check | list[Check]]) -> list[Check]:
    """跑一项检查；它自己出错时变成一行 ⚠，体检接着往下查。"""
    try:
        result = probe()
    except Exception as err:  # noqa: BLE001 —— 体检不能自己倒下：任何意外都只是这一项查不了
        one_line = " ".join(str(err).split())[:200]
        return [Check(WARN, name, f"这一项查不了 ({type(err).__name__}: {one_line})",
                      "其他项照常有效；把这一行贴到 issue 里告诉我们")]
    return result if isinstance(result, list) else [result]


def run_doctor() -> int:
    """逐项检查并打印；返回退出码：有 ✗（快速上手跑不起来）时 1，否则 0。"""
    print("学习GPT 体检 (studygpt doctor)：这台机器能不能跑快速上手")
    checks = []
    for name, probe in PROBES:
        for check in run_probe(name, probe):
            checks.append(check)
            for line in check.lines():
                print(line)
    fails, warns = (sum(c.mark == mark for c in checks) for mark in (FAIL, WARN))
    if fails:
        print(f"结论 (verdict)：{fails} 个问题 (✗) 会让快速上手跑不起来，先按上面的修复做；{warns} 个提醒 (⚠)。")
        return 1
    print(f"结论 (verdict)：快速上手可以运行 (the quick start will run)：studygpt quickstart；{warns} 个提醒 (⚠)。")
    return 0
