"""训练状态 (trainer state)：精确续训 (exact resume) 需要的一切，存进检查点的 trainer_state.pt。

续训要让"停下再接着训"和"一口气训完"得到完全相同的权重，所以要存的不只是权重：
    优化器 (AdamW 的一阶、二阶矩)、学习率调度的进度、GradScaler、
    步数 / epoch / 本 epoch 读到第几个批次、已见词元数、已用时间、最好的验证损失、
    过拟合警报的记录，以及所有随机数生成器 (torch / CUDA / Python / NumPy) 的状态。
只含张量与基本类型，所以能用 torch.load(weights_only=True) 安全加载（见 model/checkpoint.py）。
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from studygpt.errors import StudyGPTError
from studygpt.model.checkpoint import load_model, load_trainer_state, save_checkpoint


# ===== 1. 随机数状态 =====
def rng_state() -> dict:
    """torch / Python / NumPy（和 CUDA）的随机数状态，全部换成张量与基本类型。"""
    _, py_keys, py_gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": [list(py_keys), py_gauss],
             "numpy": [torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py_keys, py_gauss = state["python"]
    random.setstate((3, tuple(py_keys), py_gauss))
    np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state(("MT19937", np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ===== 2. 训练器的状态：存与取 =====
def trainer_state(trainer, elapsed: float) -> dict:
    return {"optimizer": trainer.optimizer.state_dict(), "scheduler": trainer.scheduler.state_dict(),
            "scaler": trainer.scaler.state_dict() if trainer.scaler else {}, "step": trainer.step,
            "epoch": trainer.epoch, "batch_in_epoch": trainer.batch_in_epoch, "tokens_seen": trainer.tokens_seen,
            "elapsed_s": elapsed, "best_val": trainer.best_val, "guard": trainer.guard.state_dict(),
            "rng": rng_state()}


def save_trainer(trainer, path: Path, elapsed: float, with_state: bool = True, val_loss: float | None = None):
    """保存一个检查点。with_state=False 只存推理需要的（best/：权重 + 配置 + 词表，不存优化器）。"""
    if not trainer.dist.is_main:
        return None
    extra = {"step": trainer.step, "epoch": trainer.epoch, **trainer.run_info}
    if val_loss is not None:
        extra["val_loss"] = val_loss
    return save_checkpoint(path, trainer.model, trainer.tokenizer, trainer.config.to_dict(),
                           trainer_state(trainer, elapsed) if with_state else None, extra=extra)


def restore_trainer(trainer, path: str | Path) -> None:
    """从检查点接着训练：权重、优化器、调度、随机数、数据位置全部恢复；metrics.jsonl 截到检查点那一步。"""
    model, tokenizer, _ = load_model(path, trainer.device)
    if tokenizer.vocab_hash() != trainer.tokenizer.vocab_hash():
        raise StudyGPTError(f"{path}: 检查点的词表和当前数据的词表不同，不能续训；请用检查点里的 vocab.txt。")
    trainer.model.load_state_dict(model.state_dict())
    state = load_trainer_state(path)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    if trainer.scaler and state["scaler"]:
        trainer.scaler.load_state_dict(state["scaler"])
    trainer.step, trainer.epoch, trainer.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
    trainer.tokens_seen, trainer.elapsed_before = state["tokens_seen"], state["elapsed_s"]
    trainer.guard.load_state_dict(state.get("guard", {}))
    set_rng_state(state["rng"])
    trainer.metrics.keep_until(trainer.step)  # 检查点之后写下的记录作废
