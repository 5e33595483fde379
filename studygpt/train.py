"""TransformerTrainer：整个项目唯一的训练循环 (the one training loop)。

每一个优化步 (optimizer step)：
    取 grad_accum_steps 个小批次 → 各自前向、反向（梯度累加）→ 裁剪梯度 → AdamW 更新 → 调整学习率
学习率：先线性预热 (warm-up)，再余弦衰减 (cosine decay) 到 min_lr_ratio·lr，按优化步推进，所以一定会走完
（原项目的调度永远走不完）。给了时间预算时，按"已用时间 / 预算"推进，预算用完时正好衰减完。
"""
from __future__ import annotations

import itertools
import json
import math
import random
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from studygpt import distributed
from studygpt.checkpoint import load_model, load_trainer_state, save_checkpoint
from studygpt.errors import StudyGPTError
from studygpt.evaluate import evaluate_loss, loss_summary
from studygpt.hardware import choose_precision
from studygpt.model import DialogueModel, lm_loss
from studygpt.optim import TrainConfig, WarmupCosine, build_optimizer  # noqa: F401  (也从这里导出，方便使用)
from studygpt.tokenizer import Tokenizer


# ===== 1. 随机数状态（精确续训需要） =====
def rng_state() -> dict:
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


def count_real_tokens(batch: dict) -> int:
    """一批里的真实（非填充）词元数：tokens/s 只数有用的计算。"""
    if "doc_ids" in batch:
        return int((batch["doc_ids"] >= 0).sum())
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return batch["input_ids"].numel()


def as_batch(batch) -> dict:
    """接受 dict，或原项目式的 (input_ids, labels) 元组。"""
    if isinstance(batch, dict):
        return batch
    input_ids, labels = batch[0], batch[1]
    return {"input_ids": input_ids, "labels": labels}


# ===== 2. 训练器 =====
class TransformerTrainer:
    """TransformerTrainer(model, train_loader, device, config)：原项目的接口，加上几个可选参数。

    train_loader：产出批次 dict(input_ids, labels[, attention_mask | doc_ids, positions]) 的可迭代对象，
        推荐 PackedBatches（几乎无填充、可精确续训）；也接受 DataLoader(DialogueDataset, ...)。
    config：dict（原项目的键）或 TrainConfig。
    val_loader：验证批次；tokenizer：保存检查点用（不给时从 train_loader.dataset 上找）；
    out_dir：检查点、metrics.jsonl、loss_curve.png 的目录（默认 data/，与原项目相同，
        每 save_every 个 epoch 存为 data/model_epoch_N/）；on_step(trainer)：每个优化步后调用。
    """

    def __init__(self, model: DialogueModel, train_loader, device, config, val_loader=None,
                 tokenizer: Tokenizer | None = None, out_dir: str | Path = "data", progress: bool = True,
                 on_step: Callable[["TransformerTrainer"], None] | None = None, log: Callable[[str], None] = tqdm.write):
        self.config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
        c = self.config
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.train_loader, self.val_loader = train_loader, val_loader
        self.tokenizer = tokenizer or getattr(getattr(train_loader, "dataset", None), "tokenizer", None)
        if self.tokenizer is None:
            raise StudyGPTError("TransformerTrainer 需要 tokenizer 才能保存检查点：请传 tokenizer=...。")
        self.dist = distributed.current()
        # 多进程时只有 0 号进程打印、画进度条、写文件
        self.out_dir, self.progress, self.on_step = Path(out_dir), progress and self.dist.is_main, on_step
        self.log = log if self.dist.is_main else (lambda text: None)
        torch.manual_seed(c.seed)
        self.precision = choose_precision(self.device, c.use_amp)
        self.optimizer = build_optimizer(model, c)
        self.steps_per_epoch = math.ceil(len(train_loader) / c.grad_accum_steps) if hasattr(train_loader, "__len__") else None
        self.total_steps = self._total_steps()
        if c.warmup_steps is not None and self.total_steps and c.warmup_steps >= self.total_steps:
            raise StudyGPTError(f"warmup_steps={c.warmup_steps} 不短于整个训练的 {self.total_steps} 步；请减小预热步数。")
        self.scheduler = WarmupCosine(self.optimizer, c, self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision.use_scaler else None
        self.forward_model = torch.compile(model) if c.compile else model
        if self.dist.enabled:  # DDP：反向传播时在进程间平均梯度；检查点仍从未包装的 self.model 保存
            from torch.nn.parallel import DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(self.forward_model, device_ids=ids)
        self.step = self.epoch = self.batch_in_epoch = self.tokens_seen = 0
        self.elapsed_before = 0.0  # 之前（续训前）已经用掉的训练时间
        self.best_val = float("inf")
        self.history: list[dict] = []
        self.run_info: dict = {}  # 额外写进检查点 config.json 的信息（如 `studygpt train` 的运行设置）

    def _total_steps(self) -> int | None:
        c = self.config
        if c.max_steps is not None:
            return c.max_steps
        if c.max_epochs is not None:
            if self.steps_per_epoch is None:
                raise StudyGPTError("train_loader 没有长度：请设置 max_steps 或 max_minutes。")
            return c.max_epochs * self.steps_per_epoch
        return None  # 只有时间预算

    def progress_fraction(self, elapsed: float) -> float:
        """训练进度 ∈ [0, 1]：步数与时间两种预算里走得更远的那个。"""
        parts = [self.step / self.total_steps] if self.total_steps else []
        if self.config.max_minutes:
            parts.append(elapsed / (60 * self.config.max_minutes))
        return min(max(parts), 1.0)

    # ----- 一个优化步 -----
    def _micro_batches(self):
        """本 epoch 剩下的批次（续训时从上次停下的位置开始）。"""
        loader = self.train_loader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        if hasattr(loader, "iter_from"):
            return loader.iter_from(self.batch_in_epoch)
        return itertools.islice(iter(loader), self.batch_in_epoch, None)

    def train_step(self, micro: list[dict]) -> dict:
        """对一个累加窗口做一次更新。每个小批次的损失按它的标签数加权，
        所以整体等于"窗口内所有被学习词元的平均损失"，与怎么切小批次无关。"""
        micro = [{k: v.to(self.device, non_blocking=True) for k, v in as_batch(b).items()} for b in micro]
        n_local = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)
        # 多进程时按全局标签数归一：DDP 会把各进程的梯度取平均（÷ world_size），所以这里再乘回来
        n_total = distributed.all_reduce_sum([n_local], self.device)[0]
        ctx = torch.autocast(self.device.type, dtype=self.precision.dtype) if self.precision.dtype else nullcontext()
        loss_sum = 0.0
        for i, b in enumerate(micro):
            last = i == len(micro) - 1
            # 累加的中间几步不必同步梯度 (no_sync)，只在最后一个小批次做一次 all-reduce
            sync = nullcontext() if last or not self.dist.enabled else self.forward_model.no_sync()
            with sync:
                with ctx:
                    loss, n = lm_loss(self.forward_model, b)
                scaled = loss * (n * self.dist.world_size / max(n_total, 1))
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            loss_sum += loss.item() * n
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, real, padded = distributed.all_reduce_sum(
            [loss_sum, sum(count_real_tokens(b) for b in micro), sum(b["input_ids"].numel() for b in micro)], self.device)
        return {"loss": loss_sum / max(n_total, 1), "grad_norm": float(grad_norm), "tokens": int(real),
                "padding": 1 - real / max(padded, 1)}

    # ----- 主循环 -----
    def train(self, until_step: int | None = None) -> dict:
        """训练到任一预算用完（epochs / max_steps / max_minutes）；until_step 可提前停下（测试续训用）。"""
        c = self.config
        self.log(f"精度 (precision): {self.precision.name} — {self.precision.reason}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True)
        start = time.perf_counter() - self.elapsed_before
        window_tokens, window_time, done = 0, time.perf_counter(), False
        while not done and (c.max_epochs is None or self.epoch < c.max_epochs):
            batches = self._micro_batches()
            while True:
                micro = list(itertools.islice(batches, c.grad_accum_steps))
                if not micro:
                    break  # epoch 结束：不足一个窗口的尾巴已在上一步单独更新，不会漏进下个 epoch
                stats = self.train_step(micro)
                self.step += 1
                self.batch_in_epoch += len(micro)
                self.tokens_seen += stats["tokens"]
                window_tokens += stats["tokens"]
                elapsed = time.perf_counter() - start
                self.scheduler.set_progress(self.progress_fraction(elapsed))
                bar.update(1)
                if self.step % c.log_every == 0 or self.step == 1:
                    speed = window_tokens / max(time.perf_counter() - window_time, 1e-9)
                    window_tokens, window_time = 0, time.perf_counter()
                    self._record({"step": self.step, "epoch": self.epoch, "loss": stats["loss"],
                                  "lr": self.scheduler.get_last_lr()[0], "grad_norm": stats["grad_norm"],
                                  "tokens_per_s": speed, "padding": stats["padding"], "elapsed_s": elapsed})
                    bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.1e}",
                                    tok_s=f"{speed:,.0f}")
                if c.eval_every and self.step % c.eval_every == 0:
                    self.validate_and_save(elapsed)
                if self.on_step:
                    self.on_step(self)
                done = (self.progress_fraction(elapsed) >= 1.0) or (until_step is not None and self.step >= until_step)
                done = bool(distributed.all_reduce_max(float(done), self.device))  # 各进程必须同时停下
                if done:
                    break
            epoch_finished = not done or (hasattr(self.train_loader, "__len__")
                                          and self.batch_in_epoch >= len(self.train_loader))
            if epoch_finished:
                self.epoch += 1
                self.batch_in_epoch = 0
                if c.save_every and self.epoch % c.save_every == 0:
                    self.save(self.out_dir / f"model_epoch_{self.epoch}", time.perf_counter() - start)
        bar.close()
        elapsed = time.perf_counter() - start
        val = self.validate_and_save(elapsed)
        self.plot_curves()
        return {"steps": self.step, "epoch": self.epoch, "elapsed_s": elapsed, "tokens": self.tokens_seen,
                "tokens_per_s": self.tokens_seen / max(elapsed - self.elapsed_before, 1e-9) if self.step else 0.0,
                "train_loss": next((h["loss"] for h in reversed(self.history) if "loss" in h), None), "val": val}

    def _record(self, entry: dict) -> None:
        self.history.append(entry)
        if not self.dist.is_main:
            return
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def validate(self) -> dict | None:
        if self.val_loader is None:
            return None
        local = evaluate_loss(self.model, self.val_loader, self.tokenizer, self.precision.dtype, self.config.eval_batches)
        if not self.dist.enabled:
            return local
        # 各进程各算一部分验证数据：把总损失、词元数、字符数加起来再算平均
        nll, tokens, chars = distributed.all_reduce_sum(
            [local["loss"] * local["tokens"], local["tokens"], local["chars"]], self.device)
        return loss_summary(nll, tokens, chars)

    def validate_and_save(self, elapsed: float) -> dict | None:
        """验证（若有验证集），保存 last；验证损失创新低时另存 best。"""
        val = self.validate()
        if val is not None:
            self._record({"step": self.step, "val_loss": val["loss"], "val_perplexity": val["perplexity"],
                          "val_bpc": val["bpc"]})
            self.log(f"  验证 (val) step {self.step}: loss {val['loss']:.3f} · ppl {val['perplexity']:.1f} · "
                     f"bpc {val['bpc']:.3f}")
        self.save(self.out_dir / "last", elapsed)
        if val is not None and val["loss"] < self.best_val:
            self.best_val = val["loss"]
            self.save(self.out_dir / "best", elapsed)
        return val

    # ----- 检查点 -----
    def state(self, elapsed: float) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else {}, "step": self.step, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "tokens_seen": self.tokens_seen, "elapsed_s": elapsed,
                "best_val": self.best_val, "rng": rng_state()}

    def save(self, path: Path, elapsed: float) -> Path | None:
        if not self.dist.is_main:
            return None
        return save_checkpoint(path, self.model, self.tokenizer, self.config.to_dict(), self.state(elapsed),
                               extra={"step": self.step, "epoch": self.epoch, **self.run_info})

    def resume(self, path: str | Path) -> "TransformerTrainer":
        """从检查点接着训练：权重、优化器、调度、随机数、数据位置全部恢复。"""
        model, tokenizer, _ = load_model(path, self.device)
        if tokenizer.vocab_hash() != self.tokenizer.vocab_hash():
            raise StudyGPTError(f"{path}: 检查点的词表和当前数据的词表不同，不能续训；请用检查点里的 vocab.txt。")
        self.model.load_state_dict(model.state_dict())
        state = load_trainer_state(path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.tokens_seen, self.elapsed_before, self.best_val = state["tokens_seen"], state["elapsed_s"], state["best_val"]
        set_rng_state(state["rng"])
        metrics = self.out_dir / "metrics.jsonl"
        if metrics.is_file():  # 接上之前的曲线；检查点之后写下的记录作废
            entries = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line]
            self.history = [e for e in entries if e["step"] <= self.step]
            metrics.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.history), encoding="utf-8")
        return self

    def plot_curves(self) -> Path | None:
        """把训练与验证损失画成 loss_curve.png。"""
        if not self.dist.is_main:
            return None
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        train = [(h["step"], h["loss"]) for h in self.history if "loss" in h]
        val = [(h["step"], h["val_loss"]) for h in self.history if "val_loss" in h]
        if not train:
            return None
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(*zip(*train), label="train loss")
        if val:
            ax.plot(*zip(*val), "o-", label="val loss")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("cross-entropy (nats)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = self.out_dir / "loss_curve.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
