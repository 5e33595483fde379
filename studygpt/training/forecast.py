"""训练前的预测 (forecast)：开训之前就告诉学习者要训多久、要多少内存。

第一步之前（make_forecast）：
    参数量；每个 epoch 多少词元、多少优化步；预算能走几个 epoch；
    内存估计 = 权重 + 梯度 + AdamW 状态 + 一个小批次的激活（+ CPU 上进程已经占用的：PyTorch 与数据）。
    估计放不下这台设备（CUDA：显存总量；CPU：可用内存）时直接报错并给出办法，而不是训到一半 out of memory。
前几个计时的优化步之后（time_estimate）："每个 epoch 约 X 分钟，全部约 Y 分钟"。

激活的估计按 model/transformer.py 的结构逐项数出反向传播要留着的张量（每个词元、每层）：
    注意力：两次 RMSNorm 的输入与输出 4C、qkv 3C、旋转后的 q k 2C、注意力输出与拼回的 2C → 11C（连同 MLP 的归一化）
    MLP (SwiGLU)：w13 的输出 2H、silu(gate) H、相乘的结果 H → 4H
    输出层：只在 N 个有标签的位置算，logits、log-softmax 与它的梯度各一份 N×V（fp32）
实测与估计的对比见 benchmarks/memory_forecast.py 与 docs/performance.md。
"""
from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field

import torch

from studygpt.errors import StudyGPTError

GB, MB = 1024 ** 3, 1024 ** 2


def process_rss() -> int | None:
    """本进程现在占用的物理内存 (resident set size)，字节；读不到（非 Linux）时 None。"""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def available_ram() -> int | None:
    """系统现在还能分配的内存 (MemAvailable)，字节；读不到时 None（不检查）。"""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def device_memory(device: torch.device) -> tuple[int | None, str]:
    """(这台设备能给训练用的内存上限, 说明)。CUDA：显存总量；CPU：进程已占用 + 系统可用内存。"""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, "显存总量 (GPU memory)"
    if device.type == "cpu":
        free, used = available_ram(), process_rss()
        if free is not None and used is not None:
            return free + used, "可用内存 (available RAM + 本进程已用)"
    return None, "未知 (unknown)"


def activation_bytes(model_config, rows: int, seq_len: int, labelled: int, dtype_bytes: int = 4) -> int:
    """一个小批次 (rows × seq_len) 反向传播要留着的激活，字节。labelled：其中有标签的位置数 N。"""
    C, H, L, V = model_config.d_model, model_config.ffn_hidden, model_config.n_layers, model_config.vocab_size
    tokens = rows * seq_len
    per_layer = (11 * C + 4 * H) * (1 + (model_config.dropout > 0))  # dropout 还要留掩码
    body = tokens * (L * per_layer + 2 * C) * dtype_bytes            # + 最后的 RMSNorm
    head = labelled * (C * dtype_bytes + 3 * V * 4)                   # 取出的隐藏状态 + logits 三份 (fp32)
    mask = rows * seq_len * seq_len                                   # 打包的注意力掩码 (B, 1, T, T)，bool
    return body + head + mask


@dataclass
class Forecast:
    params: int
    steps_per_epoch: int | None
    tokens_per_epoch: int | None
    total_steps: int | None
    max_minutes: float | None
    memory: dict[str, int] = field(default_factory=dict)   # 各部分，字节
    limit: int | None = None
    limit_name: str = ""
    device: str = "cpu"

    @property
    def epochs(self) -> float | None:
        """步数预算能走几个 epoch；只有时间预算时要等测完速度才知道（None）。"""
        if self.total_steps and self.steps_per_epoch:
            return self.total_steps / self.steps_per_epoch
        return None

    @property
    def memory_total(self) -> int:
        return sum(self.memory.values())

    def lines(self) -> list[str]:
        """两行：参数、epoch 的大小与预算；内存估计。只说知道的：数据没有长度（如强化学习每步现抽的回答）时
        没有 epoch，也就不提 epoch；知道步数、不知道词元数（如 DPO 的偏好对）时只说步数。"""
        known = [f"参数 {self.params:,}"]
        if self.steps_per_epoch:
            tokens = f"{self.tokens_per_epoch:,} 个词元、" if self.tokens_per_epoch is not None else ""
            known.append(f"每个 epoch {tokens}{self.steps_per_epoch:,} 个优化步")
        if self.epochs is not None:
            known.append(f"预算 {self.total_steps:,} 步 ≈ {self.epochs:.3g} 个 epoch")
        elif self.total_steps:
            known.append(f"预算 {self.total_steps:,} 步")
        else:
            later = "能走几个 epoch" if self.steps_per_epoch else "能走几步"
            known.append(f"预算 {self.max_minutes:g} 分钟：{later}要等测完前几步的速度")
        parts = " + ".join(f"{name} {size / MB:,.0f} MB" for name, size in self.memory.items())
        limit = f"，{self.limit_name} {self.limit / GB:.1f} GB" if self.limit else ""
        return [f"预测 (forecast): {' · '.join(known)}",
                f"  内存估计 (memory, {self.device}): {parts} = {self.memory_total / GB:.2f} GB{limit}"]

    def check_fits(self, batch_size: int, grad_accum_steps: int) -> None:
        """估计放不下这台设备时报错，并给出保持等效批大小的办法。"""
        if self.limit is None or self.memory_total <= self.limit:
            return
        smaller = max(batch_size // 2, 1)
        raise StudyGPTError(
            f"内存不够 (out of memory, 预测)：训练约需 {self.memory_total / GB:.2f} GB，{self.limit_name}只有 "
            f"{self.limit / GB:.2f} GB。请减小每个小批次、用梯度累加保持等效批大小，例如 --batch-size {smaller} "
            f"--grad-accum-steps {grad_accum_steps * batch_size // smaller}；或换更小的预设 (--preset)。"
            "确定要试：--check-memory false。")


def epoch_tokens(loader) -> int | None:
    """一个 epoch 真正训练的词元数（PackedBatches 能直接算；其他数据没有这个信息时 None）。"""
    return loader.tokens_in_epoch() if hasattr(loader, "tokens_in_epoch") else None


def first_batch(loader) -> dict | None:
    """PackedBatches 的第一个批次（iter_from 不动随机数，不影响训练）；别的数据不去碰它，返回 None。"""
    if not hasattr(loader, "iter_from"):
        return None
    return next(loader.iter_from(0), None)


def make_forecast(trainer) -> Forecast:
    """训练器建好之后、第一步之前的预测。"""
    c, model, device = trainer.config, trainer.model, trainer.device
    if hasattr(trainer.train_loader, "set_epoch"):
        trainer.train_loader.set_epoch(trainer.epoch)  # 预测的是接下来这个 epoch
    params = model.num_params()
    batch = first_batch(trainer.train_loader)
    # 每个进程每个小批次的行数：以数据真正给出的为准（DataLoader 的 batch_size 可能和配置不同）
    rows = batch["input_ids"].shape[0] if batch else getattr(trainer.train_loader, "batch_size", None) or c.batch_size
    seq_len = batch["input_ids"].shape[1] if batch else c.seq_len
    # 有标签的位置（只学助手的回答）：按第一个批次的比例估计；不知道时按全部估计（偏大，更安全）
    labelled_share = float((batch["labels"][:, 1:] != -100).float().mean()) if batch else 1.0
    labelled = int(rows * (seq_len - 1) * labelled_share)
    act_bytes = 2 if trainer.precision.dtype in (torch.bfloat16, torch.float16) else 4
    memory = {"权重 (weights)": params * 4, "梯度 (grads)": params * 4, "AdamW 状态": params * 8,
              "激活 (activations)": activation_bytes(model.config, rows, seq_len, labelled, act_bytes)}
    used = process_rss() if device.type == "cpu" else None
    if used is not None:
        # 进程已经占用的内存里有 PyTorch 本身、数据和已经建好的权重；权重上面单独算了，这里减掉
        memory = {"PyTorch 与数据 (runtime + data)": max(used - params * 4, 0), **memory}
    limit, limit_name = device_memory(device)
    return Forecast(params, trainer.steps_per_epoch, epoch_tokens(trainer.train_loader), trainer.total_steps,
                    c.max_minutes, memory, limit, limit_name, str(device))


def minutes_text(minutes: float) -> str:
    if minutes >= 1:
        return f"{minutes:.1f} 分钟"
    return f"{minutes * 60:.1f} 秒" if minutes * 60 < 10 else f"{minutes * 60:.0f} 秒"


def time_estimate(seconds_per_step: float, steps_per_epoch: int | None, total_steps: int | None,
                  max_minutes: float | None) -> str:
    """前几个优化步实测的速度 → "每个 epoch 约 X 分钟，全部约 Y 分钟"（不含验证的时间）。"""
    total_min = total_steps * seconds_per_step / 60 if total_steps else None
    if max_minutes is not None:
        total_min = min(total_min, max_minutes) if total_min is not None else max_minutes
    if not steps_per_epoch:
        return f"每步约 {seconds_per_step:.2f} 秒，全部约 {minutes_text(total_min)}"
    epoch_min = steps_per_epoch * seconds_per_step / 60
    return (f"每步约 {seconds_per_step:.2f} 秒：每个 epoch 约 {minutes_text(epoch_min)}，全部约 {minutes_text(total_min)}"
            f"（约 {total_min / epoch_min:.3g} 个 epoch，不含验证）")


# ===== 训练途中：速度变了就重新估计 (re-estimate when the speed changes) =====
SLOW_FACTOR = 1.5     # 最近的每步秒数是开始时的 1.5 倍以上：算"变慢了"
RECOVERED_FACTOR = 1.2  # 回到开始时的 1.2 倍以内：算"恢复了"
RECENT_STEPS = 20     # "最近的速度"：最近这么多步每步秒数的中位数


class SpeedWatch:
    """开始时实测的速度只是一次快照：别的程序占了一个核，每步就慢几倍，预测也跟着失真。

    每个优化步交给它这一步的秒数；最近 RECENT_STEPS 步的中位数比开始时慢 SLOW_FACTOR 倍以上时，
    返回一句话：慢了多少、按最近的速度到结束还要多久、预算里还能走多少步与几个 epoch；恢复时再说一句。
    """

    def __init__(self, reference_seconds: float, steps_per_epoch: int | None, total_steps: int | None,
                 max_minutes: float | None):
        self.reference = reference_seconds
        self.steps_per_epoch, self.total_steps, self.max_minutes = steps_per_epoch, total_steps, max_minutes
        self.recent: list[float] = []
        self.slow = False

    def observe(self, step: int, seconds: float, elapsed_s: float) -> str | None:
        """step：已走完的优化步；seconds：这一步用了几秒；elapsed_s：训练已用的秒数。返回要打印的一句话或 None。"""
        self.recent = (self.recent + [seconds])[-RECENT_STEPS:]
        if len(self.recent) < RECENT_STEPS:
            return None
        now = statistics.median(self.recent)
        ratio = now / self.reference
        if not self.slow and ratio >= SLOW_FACTOR:
            self.slow = True
            return (f"速度 (speed) 变慢了：最近每步 {now:.2f} 秒，开始时 {self.reference:.2f} 秒（慢 {ratio:.1f} 倍；"
                    f"别的程序在占 CPU？）。按最近的速度重新估计：{self.remaining_text(step, now, elapsed_s)}")
        if self.slow and ratio <= RECOVERED_FACTOR:
            self.slow = False
            return (f"速度 (speed) 恢复了：最近每步 {now:.2f} 秒。按最近的速度重新估计："
                    f"{self.remaining_text(step, now, elapsed_s)}")
        return None

    def remaining_text(self, step: int, seconds_per_step: float, elapsed_s: float) -> str:
        """按每步 seconds_per_step 秒：到结束还要多久、一共走到第几步、约几个 epoch（不含验证）。"""
        left_steps = None if self.total_steps is None else max(self.total_steps - step, 0)
        left_s = None if left_steps is None else left_steps * seconds_per_step
        if self.max_minutes is not None:
            budget_left = max(self.max_minutes * 60 - elapsed_s, 0.0)
            left_s = budget_left if left_s is None else min(left_s, budget_left)
        if left_s is None:
            return f"每步约 {seconds_per_step:.2f} 秒"
        end_step = step + int(left_s / seconds_per_step)
        epochs = f"，约 {end_step / self.steps_per_epoch:.2f} 个 epoch" if self.steps_per_epoch else ""
        return f"还要约 {minutes_text(left_s / 60)}，一共约 {end_step:,} 步{epochs}"
