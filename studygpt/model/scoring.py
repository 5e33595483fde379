"""给模型打分 (scoring the model)：训练要最小化的损失 lm_loss，以及"只考试、不学习"的 eval_mode（课程第 7 章）。

    lm_loss(model, batch)  用位置 t 的隐藏状态预测 t+1 的交叉熵（只在有标签的位置）：训练与验证都用它
    eval_mode(model)       with 里关掉 dropout，出来时恢复：训练中途验证一次，之后接着训练

model 是 model/transformer.py 的 DialogueModel（或包着它的 DDP / torch.compile）：这里只调用它，不需要导入它。
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F


def lm_loss(model: torch.nn.Module, batch: dict, reduction: str = "mean") -> tuple[torch.Tensor, int]:
    """语言模型损失：用位置 t 的隐藏状态预测标签 t+1，只在有标签的位置算输出层与交叉熵。

    batch: input_ids (B, T)，labels (B, T)，可选 attention_mask / doc_ids / positions。
    reduction="mean"：平均损失（训练用）；"sum"：总损失（评估时跨批次加起来，最后再除以总标签数）。
    返回 (损失, 参与计算的标签数)。训练与评估（evaluate.evaluate_loss）都用这一个函数。
    """
    hidden = model(batch["input_ids"], attention_mask=batch.get("attention_mask"),
                   doc_ids=batch.get("doc_ids"), positions=batch.get("positions"), return_hidden=True)
    targets = batch["labels"][:, 1:]               # 错开一位：位置 t 预测 t+1
    keep = targets != -100
    h = hidden[:, :-1][keep]                        # (N, C) 只保留要学习的位置
    core = getattr(model, "module", model)          # 被 DDP 包起来时，输出层在 .module 上
    logits = core.output(h).float()                 # (N, V)；在 fp32 里算 softmax 更稳
    n = int(keep.sum())
    if n == 0:
        return logits.sum() * 0.0, 0  # 这批没有要学的词元：损失为 0，但保持计算图
    return F.cross_entropy(logits, targets[keep], reduction=reduction), n


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """with 里模型处于 eval 模式（dropout 关掉），出来时恢复原来的模式：训练中途考一考，之后还要接着训练。"""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
