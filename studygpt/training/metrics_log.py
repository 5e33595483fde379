"""训练指标的记录 (metrics logger)：每条记录一行 JSON 写进 metrics.jsonl；装了 tensorboard 时也写 TensorBoard。

metrics.jsonl 是默认的、人和程序都能直接读的格式：
    {"step": 10, "epoch": 0, "loss": 3.21, "lr": 0.001, "grad_norm": 0.8, "tokens_per_s": 1040.0, ...}
    {"step": 40, "epoch": 0, "val_loss": 3.05, "val_bpc": 4.4, "train_loss": 3.1, "epoch_end": true}
TensorBoard (`pip install -e ".[tensorboard]"`，然后 `tensorboard --logdir runs`) 是学习者熟悉的看曲线方式：
train/loss、train/lr、train/grad_norm、train/tokens_per_s、val/loss、val/bpc …
多进程训练时只有 0 号进程写文件；每个进程都在内存里保留同样的 history。
"""
from __future__ import annotations

import json
from pathlib import Path

NOT_SCALARS = {"step", "epoch", "epoch_end"}


def tensorboard_writer(log_dir: Path, purge_step: int | None):
    """装了 tensorboard 就返回一个 SummaryWriter，否则 None（TensorBoard 是可选的）。"""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # 没装 tensorboard：只写 metrics.jsonl
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def scalar_name(key: str) -> str:
    """val_loss → val/loss，loss → train/loss：TensorBoard 按 "/" 前的部分分组画图。"""
    return f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}"


class MetricsLogger:
    """write(entry) 追加一条记录；history 是本次运行（含续训前）的全部记录。"""

    def __init__(self, out_dir: str | Path, enabled: bool = True):
        self.path = Path(out_dir) / "metrics.jsonl"
        self.enabled = enabled
        self.history: list[dict] = []
        self._tb = None
        self._tb_start: int | None = None  # 续训时从这一步起覆盖 TensorBoard 里的旧曲线

    def write(self, entry: dict) -> None:
        self.history.append(entry)
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        if self._tb is None:
            self._tb = tensorboard_writer(self.path.parent / "tensorboard", self._tb_start) or False
        if self._tb:
            for key, value in entry.items():
                if key not in NOT_SCALARS and isinstance(value, (int, float)):
                    self._tb.add_scalar(scalar_name(key), value, entry["step"])

    def start_fresh(self) -> None:
        """新的一次训练（不是续训）：同一目录里上一次运行的记录作废，曲线不会接在旧曲线后面。"""
        self.history = []
        self._tb_start = 0  # TensorBoard 丢掉旧运行在第 0 步及以后的点
        if self.enabled and self.path.is_file():
            self.path.unlink()

    def keep_until(self, step: int) -> None:
        """续训：读回之前的记录，只留到第 step 步（检查点之后写下的记录作废）。"""
        entries = []
        if self.path.is_file():
            entries = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
        self.history = [e for e in entries if e["step"] <= step]
        self._tb_start = step + 1
        if self.enabled and self.path.is_file():
            self.path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.history),
                                 encoding="utf-8")

    def close(self) -> None:
        if self._tb:
            self._tb.close()
        self._tb = None
