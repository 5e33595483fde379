"""第 7 章练习：训练循环里的三个零件。检查：pytest docs/exercises -k ch07

对照：studygpt/training/optim.py 的 WarmupCosine.lr_at；studygpt/training/trainer.py 的 TransformerTrainer.train_step。
"""
import torch


def warmup_cosine(progress: float, lr: float, warmup: float, min_ratio: float) -> float:
    """练习 7.1：训练进度 progress ∈ [0, 1] 时的学习率。

    progress < warmup：从 0 线性升到 lr（lr · progress / warmup）；
    之后：t = (progress − warmup) / (1 − warmup)，按余弦从 lr 降到 floor = min_ratio · lr：
        floor + (lr − floor) · (1 + cos(π · t)) / 2
    """
    raise NotImplementedError("练习 7.1：预热 + 余弦学习率 (warm-up + cosine)")


def clip_by_global_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """练习 7.2：梯度裁剪 (gradient clipping)。所有梯度拼起来的总长度（L2 范数）超过 max_norm 时，
    全部按同一个比例 max_norm / 总长度 缩小；没超过就原样返回。返回新的列表，不要改传入的张量。"""
    raise NotImplementedError("练习 7.2：按总范数裁剪梯度 (clip by global norm)")


def accumulation_weights(label_counts: list[int]) -> list[float]:
    """练习 7.3：梯度累加时，每个小批次的平均损失乘以多少，加起来才等于"整个窗口所有被学习词元的平均损失"？

    label_counts[i] 是第 i 个小批次里被学习的词元数。
    """
    raise NotImplementedError("练习 7.3：梯度累加的权重 (accumulation weights)")
