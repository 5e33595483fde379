"""TransformerTrainer：整个项目唯一的训练循环 (the one training loop)。

每一个优化步 (optimizer step)：
    取 grad_accum_steps 个小批次 → 各自前向、反向（梯度累加）→ 裁剪梯度 → AdamW 更新 → 按训练进度调学习率
train() 从上到下就是一次训练：
    1. 开训之前：精度与预测（内存放不下就停）→ 2. 一个个优化步 → 3. 按进度验证，验证损失创新低就存 best/
    → 4. 每个 epoch 末再验证一次 → 早停 → 5. 最后存 last/、画曲线
旁边的事各有各的家：学习率与进度 training/optim.py · 检查点 model/checkpoint.py · 续训状态 training/state.py · 指标 training/metrics_log.py ·
曲线 plotting.py · 过拟合与早停 training/overfit.py · 训练前的预测 training/forecast.py · 多进程 training/distributed.py ·
进度条与日志行 training/progress.py。
"""
from __future__ import annotations

import itertools
import math
import shutil
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch

from studygpt.errors import StudyGPTError
from studygpt.hardware import choose_precision
from studygpt.model.scoring import lm_loss
from studygpt.model.transformer import DialogueModel
from studygpt.plotting import plot_loss_curves
from studygpt.tokenizer.char import Tokenizer
from studygpt.training import distributed
from studygpt.training.forecast import SpeedWatch, make_forecast, time_estimate
from studygpt.training.metrics_log import MetricsLogger
from studygpt.training.optim import TrainConfig, optimizer_and_schedule
from studygpt.training.overfit import OverfitGuard
from studygpt.training.progress import ProgressDisplay
from studygpt.training.state import restore_trainer, save_trainer
from studygpt.training.validation import evaluate_loss, loss_summary

TIMED_STEPS = 5  # 第一步（预热、编译）之后再计时这么多步，估计每个 epoch 要多久


def count_real_tokens(batch: dict) -> int:
    """一批里的真实（非填充）词元数：tokens/s 只数有用的计算。"""
    if "doc_ids" in batch:
        return int((batch["doc_ids"] >= 0).sum())
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return batch["input_ids"].numel() if "input_ids" in batch else 0


def count_labels(batch: dict) -> int:
    """语言模型目标的"件数"：这一批要学习的标签数（错开一位之后）。"""
    return int((batch["labels"][:, 1:] != -100).sum())


def as_batch(batch) -> dict:
    """接受 dict，或种子接口式的 (input_ids, labels) 元组。"""
    if isinstance(batch, dict):
        return batch
    input_ids, labels = batch[0], batch[1]
    return {"input_ids": input_ids, "labels": labels}


def to_device(batch: dict, device: torch.device) -> dict:
    """CUDA 上先放进锁页内存 (pinned memory)，拷贝就不必等 GPU (non_blocking)，能与上一步的计算重叠。"""
    if device.type == "cuda":
        return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
    return {k: v.to(device) for k, v in batch.items()}


class TransformerTrainer:
    """TransformerTrainer(model, train_loader, device, config)：种子接口，加上几个可选参数。

    train_loader：产出批次 dict(input_ids, labels[, attention_mask | doc_ids, positions]) 的可迭代对象，
        推荐 PackedBatches（几乎无填充、可精确续训）；也接受 DataLoader(DialogueDataset, ...)。
    config：dict（种子接口的键）或 TrainConfig。
    val_loader：验证批次；tokenizer：保存检查点用（不给时从 train_loader.dataset 上找）；
    out_dir：检查点 (best/、last/)、metrics.jsonl、loss_curve.png 的目录（默认 data/；
        每 save_every 个 epoch 另存为 data/model_epoch_N/）；on_step(trainer)：每个优化步后调用。
    objective(model, batch) -> (平均损失, 件数)：要最小化的目标，默认语言模型损失 lm_loss。
        别的目标（LoRA 微调、DPO、强化学习）换掉它，循环、累加、裁剪、检查点、续训都不变；
        它可以带一个 count(batch) 方法，在前向之前数出"件数"，用来给累加窗口里的小批次加权
        （默认数标签，见 count_labels）。
    """

    def __init__(self, model: DialogueModel, train_loader, device, config, val_loader=None,
                 tokenizer: Tokenizer | None = None, out_dir: str | Path = "data", progress: bool = True,
                 on_step: Callable[["TransformerTrainer"], None] | None = None, log: Callable[[str], None] = print,
                 objective: Callable[[torch.nn.Module, dict], tuple[torch.Tensor, int]] = lm_loss):
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
        self.display = ProgressDisplay(log if self.dist.is_main else (lambda text: None), enabled=self.progress)
        self.log = self.display.write  # 训练中的日志行都从这里走：有进度条时写在进度条上方（见 training/progress.py）
        torch.manual_seed(c.seed)
        self.precision = choose_precision(self.device, c.use_amp)
        self.objective = objective
        self.count_items = getattr(objective, "count", count_labels)
        self.steps_per_epoch = math.ceil(len(train_loader) / c.grad_accum_steps) if hasattr(train_loader, "__len__") else None
        self.total_steps = c.planned_steps(self.steps_per_epoch)
        self.eval_batches = c.validation_batches(self.total_steps)  # 每次验证用的批次数，整个训练不变
        # AdamW 只收 requires_grad 的参数（LoRA 冻结的底座权重不在里面）；学习率按 total_steps 或时间预算调度
        self.optimizer, self.scheduler = optimizer_and_schedule(model, c, self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision.use_scaler else None
        use_compile = c.compile if c.compile is not None else self.device.type == "cuda"
        self.forward_model = torch.compile(model) if use_compile else model
        if self.dist.enabled:  # DDP：反向传播时在进程间平均梯度；检查点仍从未包装的 self.model 保存
            from torch.nn.parallel import DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(self.forward_model, device_ids=ids)
        self.metrics = MetricsLogger(self.out_dir, enabled=self.dist.is_main)
        self.guard = OverfitGuard(c.overfit_rises, c.early_stop_patience, c.keep_best)
        self.step = self.epoch = self.batch_in_epoch = self.tokens_seen = 0
        self.elapsed_before = 0.0  # 之前（续训前）已经用掉的训练时间
        self.run_info: dict = {}   # 额外写进检查点 config.json 的信息（如 `studygpt train` 的运行设置）
        self.last_val: tuple[int, dict | None] | None = None  # 最近一次验证：(第几步, 结果)
        self.train_losses: list[float] = []  # 上次验证以来每一步的训练损失，与验证损失一起记录它们的平均

    @property
    def history(self) -> list[dict]:
        return self.metrics.history

    @property
    def best_val(self) -> float:
        return self.guard.best["val_loss"] if self.guard.best else float("inf")

    def progress_fraction(self, elapsed: float) -> float:
        """训练进度 ∈ [0, 1]（由学习率调度算：步数与时间两种预算里走得更远的那个）。"""
        return self.scheduler.progress_at(self.step, elapsed)

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
        micro = [as_batch(b) for b in micro]
        # 计数在拷到设备之前、在 CPU 上做：GPU 不必停下来回答"有几个标签"
        n_local = sum(self.count_items(b) for b in micro)
        real = sum(count_real_tokens(b) for b in micro)
        padded = sum(b["input_ids"].numel() if "input_ids" in b else 0 for b in micro)
        micro = [to_device(b, self.device) for b in micro]
        # 多进程时按全局标签数归一：DDP 会把各进程的梯度取平均（÷ world_size），所以这里再乘回来
        n_total = self.dist.all_reduce_sum([n_local], self.device)[0]
        ctx = torch.autocast(self.device.type, dtype=self.precision.dtype) if self.precision.dtype else nullcontext()
        loss_sum = 0.0
        for i, b in enumerate(micro):
            last = i == len(micro) - 1
            # 累加的中间几步不必同步梯度 (no_sync)，只在最后一个小批次做一次 all-reduce
            sync = nullcontext() if last or not self.dist.enabled else self.forward_model.no_sync()
            with sync:
                with ctx:
                    loss, n = self.objective(self.forward_model, b)
                scaled = loss * (n * self.dist.world_size / max(n_total, 1))
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            loss_sum += loss.item() * n
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        trained = [p for p in self.model.parameters() if p.requires_grad]
        grad_norm = torch.nn.utils.clip_grad_norm_(trained, self.config.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, real, padded = self.dist.all_reduce_sum([loss_sum, real, padded], self.device)
        return {"loss": loss_sum / max(n_total, 1), "grad_norm": float(grad_norm), "tokens": int(real),
                "padding": 1 - real / padded if padded else 0.0}

    # ----- 主循环 -----
    def train(self, until_step: int | None = None) -> dict:
        """训练到任一预算用完（epochs / max_steps / max_minutes）或早停；until_step 可提前停下（测试续训用）。"""
        c = self.config
        # ===== 1. 开训之前：精度、预测（内存放不下就在这里停，而不是训到一半） =====
        self.log(f"精度 (precision): {self.precision.name} — {self.precision.reason}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.step == 0:
            self.start_fresh()
        self.forecast = make_forecast(self)
        for line in self.forecast.lines():
            self.log(line)
        if c.check_memory:
            self.forecast.check_fits(getattr(self.train_loader, "batch_size", None) or c.batch_size, c.grad_accum_steps)
        self.val_mark = int(self.scheduler.progress * c.eval_points)  # 续训时已经走过的验证刻度
        bar = self.display.start(self.total_steps, initial=self.step)  # 终端里是进度条，否则每隔几秒一行
        start = time.perf_counter() - self.elapsed_before
        self._window, self._step_seconds, first_step = [0, time.perf_counter()], [], self.step + 1
        self._speed: SpeedWatch | None = None  # 开始时的速度测完后才有
        elapsed, done = self.elapsed_before, self.scheduler.finished  # 续训一个已经训完的运行：一步也不多走
        while not done and (c.max_epochs is None or self.epoch < c.max_epochs):
            batches, steps_before, from_start = self._micro_batches(), self.step, self.batch_in_epoch == 0
            # ===== 2. 一个 epoch：每 grad_accum_steps 个小批次做一次更新 =====
            while not done:
                t0 = time.perf_counter()
                micro = list(itertools.islice(batches, c.grad_accum_steps))
                if not micro:
                    break  # epoch 结束：不足一个窗口的尾巴已在上一步单独更新，不会漏进下个 epoch
                stats = self.train_step(micro)
                if self.step + 1 == first_step:
                    # 本进程的第一步含一次性的开销（CUDA 上 torch.compile 编译要一两分钟）：不算进训练时间。
                    # 否则 --max-minutes 的学习率调度一开始就跳过预热，预算短时甚至第一步就"用完"了
                    start += time.perf_counter() - t0
                self.step += 1
                self.batch_in_epoch += len(micro)
                self.tokens_seen += stats["tokens"]
                self.train_losses.append(stats["loss"])
                elapsed = time.perf_counter() - start
                progress = self.scheduler.update(self.step, elapsed)  # 调度算进度，并设好下一步的学习率
                self._log_step(stats, elapsed, time.perf_counter() - t0, first_step, bar)
                # ===== 3. 验证：进度每走 1/eval_points（或每 eval_every 步）一次；创新低就存 best/ =====
                if self._validation_due(progress):
                    self.validate_and_save(elapsed, save_last=False)
                if self.on_step:
                    self.on_step(self)
                done = self.scheduler.finished or self.guard.should_stop or (
                    until_step is not None and self.step >= until_step)
                done = bool(self.dist.all_reduce_max(float(done), self.device))  # 各进程必须同时停下
            if from_start and self.step == steps_before:  # 从头走完一个 epoch 却一步也没走：再开一个 epoch 也一样
                bar.close()
                self.metrics.close()
                raise StudyGPTError(f"第 {self.epoch} 个 epoch 一个批次也没有产出 (empty epoch)，训练不会前进："
                                    "请给更多训练数据，或减小 --batch-size。")
            # ===== 4. epoch 结束：记下边界，验证一次（这一步还没验证过的话），按 save_every 另存 =====
            if not done or (hasattr(self.train_loader, "__len__") and self.batch_in_epoch >= len(self.train_loader)):
                self.metrics.write({"step": self.step, "epoch": self.epoch, "epoch_end": True})
                self.validate_and_save(elapsed, save_last=False)
                self.epoch += 1
                self.batch_in_epoch = 0
                if c.save_every and self.epoch % c.save_every == 0:
                    self.save(self.out_dir / f"model_epoch_{self.epoch}", time.perf_counter() - start)
                done = done or self.guard.should_stop
        # ===== 5. 结束：早停的说明，最后一次验证，存 last/，画曲线 =====
        bar.close()
        if self.guard.should_stop:
            self.log(self.guard.stop_message())
        elapsed = time.perf_counter() - start
        val = self.validate_and_save(elapsed)
        self.metrics.close()
        if self.dist.is_main:
            plot_loss_curves(self.history, self.out_dir / "loss_curve.png")
        return {"steps": self.step, "epoch": self.epoch, "elapsed_s": elapsed, "tokens": self.tokens_seen,
                "tokens_per_s": self.tokens_seen / max(elapsed - self.elapsed_before, 1e-9) if self.step else 0.0,
                "train_loss": next((h["loss"] for h in reversed(self.history) if "loss" in h), None), "val": val,
                "best": self.guard.best, "early_stopped": self.guard.should_stop}

    def _log_step(self, stats: dict, elapsed: float, step_seconds: float, first_step: int, bar) -> None:
        """进度（条或行）、每 log_every 步一条训练记录；第一步之后计时 TIMED_STEPS 步，估计每个 epoch 要多久。"""
        c = self.config
        bar.update(self.step, stats["loss"], stats["tokens"], self.scheduler.progress, elapsed)
        self._window[0] += stats["tokens"]
        if self.step > first_step and len(self._step_seconds) < TIMED_STEPS:
            self._step_seconds.append(step_seconds)
            if len(self._step_seconds) == TIMED_STEPS:
                self.log("  " + time_estimate(statistics.median(self._step_seconds), self.steps_per_epoch,
                                              self.total_steps, c.max_minutes))
                self._speed = SpeedWatch(statistics.median(self._step_seconds), self.steps_per_epoch,
                                         self.total_steps, c.max_minutes)
        elif self._speed is not None and (news := self._speed.observe(self.step, step_seconds, elapsed)):
            self.log("  " + news)  # 速度变了：按最近的速度重新估计，说出来
        if self.step % c.log_every == 0 or self.step == 1:
            speed = self._window[0] / max(time.perf_counter() - self._window[1], 1e-9)
            self._window = [0, time.perf_counter()]
            lr = self.scheduler.get_last_lr()[0]
            self.metrics.write({"step": self.step, "epoch": self.epoch, "loss": stats["loss"], "lr": lr,
                                "grad_norm": stats["grad_norm"], "tokens_per_s": speed, "padding": stats["padding"],
                                "elapsed_s": elapsed})
            bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.1e}", tok_s=f"{speed:,.0f}")

    def _validation_due(self, progress: float) -> bool:
        """eval_every > 0：每 eval_every 步；否则进度每跨过一个 1/eval_points 的刻度验证一次。"""
        c = self.config
        if c.eval_every:
            due = self.step % c.eval_every == 0
        else:
            mark = int(progress * c.eval_points + 1e-9)
            due, self.val_mark = mark > self.val_mark, max(mark, self.val_mark)
        return bool(self.dist.all_reduce_max(float(due), self.device))  # 按时间算进度时各进程可能差一点

    # ----- 验证与保存 -----
    def validate(self) -> dict | None:
        """在验证集的前 self.eval_batches 个批次上算 loss / perplexity / bpc；没有验证集时 None。"""
        if self.val_loader is None:
            return None
        local = evaluate_loss(self.model, self.val_loader, self.tokenizer, self.precision.dtype, self.eval_batches)
        if not self.dist.enabled:
            return local
        # 各进程各算一部分验证数据：把总损失、词元数、字符数加起来再算平均
        nll, tokens, chars = self.dist.all_reduce_sum(
            [local["loss"] * local["tokens"], local["tokens"], local["chars"]], self.device)
        return loss_summary(nll, tokens, chars)

    def validate_and_save(self, elapsed: float, save_last: bool = True) -> dict | None:
        """验证（这一步已经验证过就用那次的结果），验证损失创新低时存 best/；save_last 时另存 last/。"""
        if self.last_val is None or self.last_val[0] != self.step:
            self.last_val = (self.step, self.validate())
            self._record_validation(self.last_val[1], elapsed)
        if save_last:
            self.save(self.out_dir / "last", elapsed)
        return self.last_val[1]

    def _record_validation(self, val: dict | None, elapsed: float) -> None:
        if val is None:
            return
        train_loss = statistics.fmean(self.train_losses) if self.train_losses else None
        self.train_losses = []
        is_best, warning = self.guard.observe(self.step, self.epoch, val["loss"], train_loss)
        self.metrics.write({"step": self.step, "epoch": self.epoch, "val_loss": val["loss"],
                            "val_perplexity": val["perplexity"], "val_bpc": val["bpc"], "train_loss": train_loss})
        # 数据没有长度时没有 epoch 可说（只有步数）
        where = f" · epoch {self.epoch + self.batch_in_epoch / len(self.train_loader):.2f}" if self.steps_per_epoch else ""
        train_text = f" · 训练 {train_loss:.3f}" if train_loss is not None else ""
        self.log(f"  验证 (val) 第 {self.step} 步{where} · loss {val['loss']:.3f} · "
                 f"bpc {val['bpc']:.3f}{train_text}{' ★ best' if is_best else ''}")
        if warning:
            self.log("  " + warning)
        if is_best and self.config.keep_best:  # best/ 只为推理：权重 + 配置 + 词表（续训用 last/，所以不存优化器状态）
            save_trainer(self, self.out_dir / "best", elapsed, with_state=False, val_loss=val["loss"])

    def start_fresh(self) -> None:
        """从第 0 步开始的新运行：删掉同一目录里上一次运行留下的 best/ 和指标，免得 chat 加载别人的"最好模型"。"""
        self.metrics.start_fresh()
        stale = self.out_dir / "best"
        if self.dist.is_main and (stale / "model.safetensors").is_file():
            shutil.rmtree(stale)

    def save(self, path: Path, elapsed: float) -> Path | None:
        val = self.last_val[1] if self.last_val and self.last_val[0] == self.step and self.last_val[1] else None
        return save_trainer(self, path, elapsed, val_loss=val["loss"] if val else None)

    def resume(self, path: str | Path) -> "TransformerTrainer":
        """从检查点接着训练：权重、优化器、调度、随机数、数据位置全部恢复（见 training/state.py）。"""
        restore_trainer(self, path)
        return self
