"""训练配置、优化器与学习率调度 (training config, optimizer, learning-rate schedule)。

- TrainConfig：原项目的键都认，未知的键或不可能的组合会报清楚的错；
- build_optimizer：AdamW，权重衰减只作用于矩阵；
- WarmupCosine：线性预热 + 余弦衰减到下限，按训练进度推进，所以一定会走完（原项目的调度永远走不完）。
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from studygpt.errors import StudyGPTError
from studygpt.model import DialogueModel


# ===== 1. 训练配置 =====
@dataclass
class TrainConfig:
    """原项目的键 (lr, weight_decay, epochs, grad_accum_steps, use_amp, max_grad_norm, save_every,
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
    eval_every: int = 0                # 每几个优化步验证一次（0 = 只在每个 epoch 末）
    eval_batches: int = 50             # 每次验证最多用多少个批次
    log_every: int = 10
    seed: int = 0
    compile: bool = False              # torch.compile
    assistant_token_id: int | None = None  # 原项目的键；标签已由对话格式决定，这里只接受不使用

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
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
    """线性预热 + 余弦衰减，按"训练进度" progress ∈ [0, 1] 设定学习率。"""

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
