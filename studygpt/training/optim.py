"""训练配置、优化器与学习率调度 (training config, optimizer, learning-rate schedule)。

- TrainConfig：种子接口的键 (lr, epochs, save_every …) 都认，未知的键或不可能的组合会报清楚的错；
- build_optimizer：AdamW，权重衰减只作用于矩阵；
- TrainConfig.planned_steps：按预算（max_steps / epochs）算出一共多少个优化步；TrainConfig.validation_batches：每次验证几个批次；
- WarmupCosine：线性预热 + 余弦衰减到下限。调度自己管"训练进度" progress ∈ [0, 1]：
  步数预算与时间预算里走得更远的那个，所以无论按哪种预算，学习率都正好在预算用完时衰减完；
- optimizer_and_schedule：训练器一次拿到优化器和调度。
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from studygpt.errors import StudyGPTError, check_field_types
from studygpt.model.transformer import DialogueModel


# ===== 1. 训练配置 =====
@dataclass
class TrainConfig:
    """种子接口的键 (lr, weight_decay, epochs, grad_accum_steps, use_amp, max_grad_norm, save_every,
    assistant_token_id, batch_size) 都认；未知的键或不可能的组合会报清楚的错。"""
    lr: float = 1e-3
    weight_decay: float = 0.1          # 只作用于矩阵（见 build_optimizer）
    betas: tuple[float, float] = (0.9, 0.95)
    epochs: int | None = None          # None：没给 max_steps/max_minutes 时训练 1 个 epoch，否则不按 epoch 停
    max_steps: int | None = None       # 优化步上限；给了就以它为准
    max_minutes: float | None = None   # 时间预算（分钟）；学习率调度按时间走完
    batch_size: int = 16
    seq_len: int = 256                 # 打包后每行的长度
    grad_accum_steps: int = 1
    use_amp: bool = True               # 只有硬件真的支持快速低精度时才会启用（见 hardware.py）
    max_grad_norm: float = 1.0
    warmup_ratio: float = 0.03         # 预热占整个训练的比例
    warmup_steps: int | None = None    # 或者直接给预热步数
    min_lr_ratio: float = 0.1          # 余弦衰减的下限 = min_lr_ratio · lr
    save_every: int = 0                # 每几个 epoch 另存一份检查点 model_epoch_N（0 = 不另存；last/best 总会保存）
    eval_every: int = 0                # 每几个优化步验证一次；0 = 自动：进度每走 1/eval_points 验证一次。每个 epoch 末总会验证
    eval_points: int = 20              # 自动验证时，整个预算里至少验证几次（步数、epoch、时间预算都一样）
    eval_batches: int | None = None    # 每次验证用验证集的前几个批次（固定的，所以前后可比）；None = 自动，见 validation_batches
    early_stop_patience: int = 5       # 验证损失连续这么多次没有创新低就提前停下（0 = 不早停）；best/ 总是最好的那个
    keep_best: bool = True             # 验证损失创新低时另存 best/（chat 等默认用它）；False = 只存 last/
    overfit_rises: int = 3             # 验证损失连续上升几次（同时训练损失在降）就打印过拟合警告
    log_every: int = 10
    seed: int = 0
    compile: bool | None = None        # torch.compile；None = 自动：CUDA 上开，CPU 上关（编译要先花时间）；--preset auto 实测后定
    check_memory: bool = True          # 训练前估计内存，放不下就报错（而不是半路 out of memory）
    assistant_token_id: int | None = None  # 种子接口的键；标签已由对话格式决定，这里只接受不使用

    def __post_init__(self) -> None:
        check_field_types(self)  # 先看类型：`--lr abc` 进来的是字符串
        betas = self.betas if isinstance(self.betas, (list, tuple)) else ()
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise StudyGPTError(f"训练配置无效 (invalid training config): betas={self.betas!r} 必须是 [0, 1) 里的两个数，如 (0.9, 0.95)。")
        self.betas = tuple(betas)
        checks = [
            (self.lr > 0, f"lr={self.lr} 必须 > 0"),
            (self.grad_accum_steps >= 1, f"grad_accum_steps={self.grad_accum_steps} 必须 ≥ 1"),
            (self.batch_size >= 1 and self.seq_len >= 2, "batch_size 必须 ≥ 1，seq_len 必须 ≥ 2"),
            (self.epochs is None or self.epochs >= 1, f"epochs={self.epochs} 必须 ≥ 1"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps={self.max_steps} 必须 ≥ 1"),
            (self.max_minutes is None or self.max_minutes > 0, f"max_minutes={self.max_minutes} 必须 > 0"),
            (0 <= self.warmup_ratio < 1, f"warmup_ratio={self.warmup_ratio} 必须在 [0, 1) 之间"),
            (0 <= self.min_lr_ratio <= 1, f"min_lr_ratio={self.min_lr_ratio} 必须在 [0, 1] 之间"),
            (self.max_grad_norm > 0, f"max_grad_norm={self.max_grad_norm} 必须 > 0"),
            (self.weight_decay >= 0, f"weight_decay={self.weight_decay} 必须 ≥ 0"),
            (self.eval_every >= 0 and self.eval_points >= 1, "eval_every 必须 ≥ 0，eval_points 必须 ≥ 1"),
            (self.save_every >= 0 and self.log_every >= 1, "save_every 必须 ≥ 0（0 = 不另存），log_every 必须 ≥ 1"),
            (self.warmup_steps is None or self.warmup_steps >= 0, f"warmup_steps={self.warmup_steps} 必须 ≥ 0"),
            (self.seed >= 0, f"seed={self.seed} 必须 ≥ 0"),
            (self.eval_batches is None or self.eval_batches >= 1, f"eval_batches={self.eval_batches} 必须 ≥ 1"),
            (self.early_stop_patience >= 0 and self.overfit_rises >= 1,
             "early_stop_patience 必须 ≥ 0（0 = 不早停），overfit_rises 必须 ≥ 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise StudyGPTError(f"训练配置无效 (invalid training config): {message}。")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise StudyGPTError(f"训练配置里有未知的键 {unknown}；可用的键：{sorted(known)}。")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def max_epochs(self) -> int | None:
        if self.epochs is not None:
            return self.epochs
        return None if (self.max_steps or self.max_minutes) else 1

    def validation_batches(self, total_steps: int | None, most: int = 20, share: float = 0.1) -> int:
        """每次验证用几个批次。给了 eval_batches 就用它；否则最多 most 个，并让全部验证的计算不超过训练的 share。

        一个训练批次 ≈ 3 次前向（前向 + 反向约 2 倍），验证只做前向：
        eval_points 次 × n 个批次 ≤ share × 3 × total_steps × grad_accum_steps。只有时间预算时不知道总步数，用 most。
        """
        if self.eval_batches is not None:
            return self.eval_batches
        if not total_steps:
            return most
        budget = share * 3 * total_steps * self.grad_accum_steps / self.eval_points
        return max(2, min(most, int(budget)))

    def planned_steps(self, steps_per_epoch: int | None) -> int | None:
        """整个训练一共多少个优化步；只有时间预算时返回 None（由时间决定）。"""
        total = self.max_steps
        if total is None and self.max_epochs is not None:
            if steps_per_epoch is None:
                raise StudyGPTError("train_loader 没有长度：请设置 max_steps 或 max_minutes。")
            total = self.max_epochs * steps_per_epoch
        if self.warmup_steps is not None and total and self.warmup_steps >= total:
            raise StudyGPTError(f"warmup_steps={self.warmup_steps} 不短于整个训练的 {total} 步；请减小预热步数。")
        return total


# 旧的函数名：planned_steps(config, steps_per_epoch) 与 validation_batches(config, total_steps) 照样能用
planned_steps = TrainConfig.planned_steps
validation_batches = TrainConfig.validation_batches


# ===== 2. 优化器与学习率调度 =====
def build_optimizer(model: DialogueModel, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW；权重衰减只用于矩阵（线性层、嵌入），不用于 RMSNorm 的缩放向量——把它们往 0 拉没有意义。"""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused：一次遍历完成一个参数的全部 AdamW 运算，而默认实现每个参数要过十来遍内存
    # （连续存放的参数上实测快 3 倍，见 docs/performance.md；GPU 上也是推荐做法）
    fused = all(p.device.type in ("cpu", "cuda") for p in decay + no_decay)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused)


class WarmupCosine:
    """线性预热 + 余弦衰减，按"训练进度" progress ∈ [0, 1] 设定学习率。

    进度由调度自己算（progress_at）：步数预算 step / total_steps 与时间预算 已用时间 / max_minutes，
    取走得更远的那个。训练循环每步调用 update(step, elapsed_s)，progress 到 1 就是预算用完 (finished)。
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int | None = None):
        self.optimizer, self.config = optimizer, config
        self.total_steps = total_steps
        self.progress = 0.0
        self.set_progress(0.0)

    def warmup_fraction(self) -> float:
        if self.config.warmup_steps is not None and self.total_steps:
            return self.config.warmup_steps / self.total_steps
        return self.config.warmup_ratio

    def lr_at(self, progress: float) -> float:
        c, warm = self.config, self.warmup_fraction()
        if progress < warm:
            return c.lr * (progress + 1e-9) / warm  # 线性从 ~0 升到 lr
        t = min((progress - warm) / max(1 - warm, 1e-9), 1.0)
        floor = c.min_lr_ratio * c.lr
        return floor + (c.lr - floor) * 0.5 * (1 + math.cos(math.pi * t))

    def progress_at(self, step: int, elapsed_s: float) -> float:
        """第 step 步、已用 elapsed_s 秒时的训练进度 ∈ [0, 1]。"""
        parts = [step / self.total_steps] if self.total_steps else []
        if self.config.max_minutes:
            parts.append(elapsed_s / (60 * self.config.max_minutes))
        return min(max(parts), 1.0)

    def update(self, step: int, elapsed_s: float) -> float:
        """一个优化步之后：推进进度、设定下一步的学习率，返回进度。"""
        self.set_progress(self.progress_at(step, elapsed_s))
        return self.progress

    @property
    def finished(self) -> bool:
        return self.progress >= 1.0

    def set_progress(self, progress: float) -> None:
        self.progress = progress
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(progress)

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"progress": self.progress, "total_steps": self.total_steps}

    def load_state_dict(self, state: dict) -> None:
        self.total_steps = state["total_steps"]
        self.set_progress(state["progress"])


def optimizer_and_schedule(model: DialogueModel, config: TrainConfig,
                           total_steps: int | None) -> tuple[torch.optim.AdamW, WarmupCosine]:
    """训练器开训前要的两样：AdamW（build_optimizer）和它的学习率调度（WarmupCosine，total_steps 见 planned_steps）。"""
    optimizer = build_optimizer(model, config)
    return optimizer, WarmupCosine(optimizer, config, total_steps)
