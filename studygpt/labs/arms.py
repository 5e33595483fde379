"""实验的两组 (the two arms of a lab)：对照组 (baseline) 照快速上手的配方训练，实验组 (variant) 只改一处。

    Variant     改了哪一处：换一个模型 (make_model)、换一个训练目标 (objective)、改几项设置 (model / train)
    train_arm   按快速上手的配方训练一组，再考快速上手的两场试 → Arm（量出来的数）

按步数 (max_steps) 而不是按时间训练：同样的设置在快的和慢的机器上走同样多步，结果只差浮点误差。
都在 CPU 上跑：几分钟的小模型用不着 GPU，而且 GPU 上打包的注意力掩码走另一条路（FlexAttention），
labs/broken.py 里去掉因果掩码的写法只认 CPU 上的稠密掩码。
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from studygpt.generation.batch_decode import greedy_batch
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.recipes.quickstart import (
    QuickstartData,
    quickstart_exams,
    quickstart_spec,
)
from studygpt.recipes.train import build_trainer

SAMPLE_PROMPTS = ["你好", "你是谁？", "23加58等于多少？"]  # 打印出来看一眼的回答（判分用的是考试的全部题目）


@dataclass(frozen=True)
class Variant:
    """实验组改的那一处；什么都不给就是对照组。
    make_model：按配置建模型（见 labs/broken.py）；objective：训练目标 (model, batch) → (损失, 件数)；
    model / train：覆盖快速上手的模型设置 (ModelConfig) 与训练设置 (TrainConfig)。"""
    make_model: Callable[[ModelConfig], DialogueModel] | None = None
    objective: Callable | None = None
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


@dataclass
class Arm:
    """一组训练完量出来的数。
    train_loss：训练最后一段（最后一次验证之前的那些步）的平均训练损失；
    val_loss：验证集上的损失，只算助手的回答（两组算法相同，可以直接比）；
    chat / sums：20 个固定聊天问题、全部留出的两位数加法的正确率（贪心解码，与快速上手的考试相同）。
    损失变成 nan/inf（训练发散 (diverged)）时记为 inf：比较"谁更高"时它总是更高。"""
    steps: int
    train_loss: float
    val_loss: float
    chat: float
    sums: float
    chat_score: str
    sums_score: str
    samples: dict[str, str]
    seconds: float
    history: list[dict] = field(repr=False, default_factory=list)


def finite_or_inf(x: float | None) -> float:
    return math.inf if x is None or not math.isfinite(x) else float(x)


def arm_trainer(variant: Variant | None, data: QuickstartData, seed: int, steps: int, out: str | Path,
                progress: bool = False, threads: int | None = None):
    """建好一组的训练器（还没训练）：快速上手的配方，按步数训练，只改 variant 说的那一处（None = 对照组）。
    out：这一组的检查点与 metrics.jsonl；threads：CPU 线程数，None = PyTorch 的默认。"""
    variant = variant or Variant()
    spec = quickstart_spec(out, seed=seed, minutes=None, max_steps=steps, device="cpu", threads=threads)
    spec.model.update(variant.model)
    spec.train.update(variant.train)
    options = {"objective": variant.objective} if variant.objective else {}
    return build_trainer(spec, data.train, data.val, log=lambda text: None, progress=progress,
                         make_model=variant.make_model, **options)


def train_arm(variant: Variant | None, data: QuickstartData, seed: int, steps: int, out: str | Path,
              progress: bool = False, threads: int | None = None) -> Arm:
    """训练一组（参数同 arm_trainer），考快速上手的两场试，返回量出来的数。"""
    start = time.perf_counter()
    trainer = arm_trainer(variant, data, seed, steps, out, progress, threads)
    summary = trainer.train()
    model, tokenizer = trainer.model, trainer.tokenizer
    exams = quickstart_exams(model, tokenizer, data.corpus)
    replies = greedy_batch(model, tokenizer, SAMPLE_PROMPTS, max_length=40)
    last = next((h for h in reversed(trainer.history) if h.get("train_loss") is not None), {})
    return Arm(steps=summary["steps"], train_loss=finite_or_inf(last.get("train_loss")),
               val_loss=finite_or_inf((summary["val"] or {}).get("loss")),
               chat=exams["chat"].accuracy, sums=exams["addition"].accuracy,
               chat_score=exams["chat"].score(), sums_score=exams["addition"].score(),
               samples=dict(zip(SAMPLE_PROMPTS, replies)), seconds=time.perf_counter() - start,
               history=trainer.history)
