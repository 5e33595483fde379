"""训练进度怎样显示 (how training progress is shown)：终端里一条进度条，别处每隔几秒一行普通文字。

终端 (terminal) 里：tqdm 进度条在同一行上原地刷新——靠回车 (carriage return, \\r) 回到行首重画。
训练中的其它日志行（验证、过拟合警报、中途"考一考"、Python 警告）都经过 ProgressDisplay.write：
先擦掉进度条，把这一行写在它上方，再把进度条画回来，所以日志行永远不会粘在进度条的文字后面。

输出不是终端时（`studygpt quickstart | tee log`、CI 日志、notebook 单元格）：回车没有"原地"可言，
每一次刷新都会变成日志里的一段字，几分钟的训练就是几百 KB。这时不画进度条，改成每隔 LINE_EVERY_S 秒
（外加第一步和最后一步）写一行普通文字，和验证行走同一个日志函数、按先后排好：

      进度 (progress) 第 120/500 步 · 24% · loss 3.214 · 12,345 tok/s · 已用 0:42 · 还要约 2:13

enabled=False（命令行的 --no-progress）：进度条和进度行都不显示；验证行等日志照常。
"""
from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable

from tqdm import tqdm

LINE_EVERY_S = 10.0  # 输出不是终端时，每隔多少秒写一行进度（测试里改小，不必真等）


def is_terminal(stream) -> bool:
    """stream 是不是终端（tty）。没有 isatty 的流（如 None、自制的文件对象）算作不是。"""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def clock_text(seconds: float) -> str:
    """秒数 → 'm:ss'，超过一小时 'h:mm:ss'。"""
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(step: int, total: int | None, progress: float, loss: float, tokens_per_s: float,
                  elapsed: float, remaining: float | None = None) -> str:
    """一行进度。progress ∈ [0, 1] 是学习率调度算的训练进度（步数与时间预算里走得更远的那个），
    所以只有时间预算 (--max-minutes) 时也有百分比；remaining：估计还要几秒，None 时不写。"""
    steps = f"{step}/{total}" if total else f"{step}"
    eta = f" · 还要约 {clock_text(remaining)}" if remaining is not None else ""
    return (f"  进度 (progress) 第 {steps} 步 · {progress:.0%} · loss {loss:.3f} · {tokens_per_s:,.0f} tok/s · "
            f"已用 {clock_text(elapsed)}{eta}")


class ProgressDisplay:
    """训练循环显示进度、写日志的唯一出口。

    log：真正写一行日志的函数（默认 print，写到 stdout）；训练器的 self.log 就是这里的 write。
    enabled：False 时不显示进度（--no-progress）。stream：进度条写到哪里（默认 sys.stderr，与 tqdm 相同）。
    every_s：不是终端时每隔几秒一行（默认 LINE_EVERY_S）；clock：计时用的钟（测试里换成假钟）。

    用法（见 TransformerTrainer.train）：start(total, initial) → 每步 update(...) → close()；
    任何时候 write(text)。
    """

    def __init__(self, log: Callable[[str], None] = print, enabled: bool = True, stream=None,
                 every_s: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.log, self.enabled, self.stream = log, enabled, stream
        self.every_s = LINE_EVERY_S if every_s is None else every_s
        self.clock = clock
        self.mode = "off"
        self.bar: tqdm | None = None

    def start(self, total: int | None, initial: int = 0) -> ProgressDisplay:
        """训练开始：选显示方式。进度条写 stderr、日志行写 stdout，两个都是终端才画进度条——
        `| cat` 时 stderr 仍是终端，但日志行要经过管道才到屏幕，会晚于进度条的重画、又粘到它后面。"""
        stream = self.stream if self.stream is not None else sys.stderr
        if not self.enabled:
            self.mode = "off"
        elif is_terminal(stream) and is_terminal(sys.stdout):
            self.mode = "bar"
            self.bar = tqdm(total=total, initial=initial, file=stream, unit="step", dynamic_ncols=True)
            self.bar_stream = stream
            # 训练中的 Python 警告也写在进度条上方（close 时换回原来的 showwarning）
            self._showwarning, warnings.showwarning = warnings.showwarning, self._warning_above_bar
        else:
            self.mode = "lines"
        self.total = total
        self.initial = self.shown_step = self.step = initial  # 从第几步开始；上一行进度写到第几步；现在第几步
        self.window = {"start": self.clock(), "tokens": 0, "loss_sum": 0.0, "steps": 0}  # 上一行以来
        self.next_line_at = self.window["start"]  # 第一步之后就写第一行：看得到训练真的开始了
        return self

    def write(self, text: str) -> None:
        """写一行日志。进度条在屏幕上时：擦掉它 → 写这一行 → 画回来，这一行于是留在进度条上方。"""
        if self.bar is None:
            self.log(text)
            sys.stdout.flush()  # 管道里的 stdout 整块缓冲 (block-buffered)：不冲一下，`| tee log` 要攒够几 KB 才看到
            return
        with tqdm.external_write_mode(file=self.bar_stream):
            self.log(text)

    def _warning_above_bar(self, *args, **kwargs) -> None:
        with tqdm.external_write_mode(file=self.bar_stream):
            self._showwarning(*args, **kwargs)

    def update(self, step: int, loss: float, tokens: int, progress: float, elapsed: float) -> None:
        """每个优化步之后调用一次：进度条走到第 step 步；或者（不是终端时）到时间了写一行进度。
        loss、tokens：这一步的训练损失与真实词元数；progress ∈ [0, 1]；elapsed：训练已用的秒数。"""
        self.step, self.progress, self.elapsed = step, progress, elapsed
        if self.mode == "bar":
            self.bar.update(step - self.bar.n)
        elif self.mode == "lines":
            w = self.window
            w["tokens"] += tokens
            w["loss_sum"] += loss
            w["steps"] += 1
            if self.clock() >= self.next_line_at:
                self._write_line()

    def set_postfix(self, **fields) -> None:
        """进度条末尾的数字（loss、lr、tok_s）。进度行自己算，这里只管进度条。"""
        if self.bar is not None:
            self.bar.set_postfix(**fields)

    def _write_line(self) -> None:
        """写一行进度：loss 与 tok/s 是上一行以来的平均，比某一步的数字稳。"""
        w, now = self.window, self.clock()
        speed = w["tokens"] / max(now - w["start"], 1e-9)
        # 剩余时间 = 已用时间按进度外推。训练器不把第一步（含编译等一次性开销）算进已用时间，
        # 所以第一步之后还没有可外推的数，不写
        p = self.progress
        remaining = self.elapsed * (1 - p) / p if 0 < p < 1 and self.step > self.initial + 1 else None
        self.write(progress_line(self.step, self.total, p, w["loss_sum"] / w["steps"], speed, self.elapsed, remaining))
        self.window = {"start": now, "tokens": 0, "loss_sum": 0.0, "steps": 0}
        self.shown_step, self.next_line_at = self.step, now + self.every_s

    def close(self) -> None:
        """训练结束：收起进度条（换回原来的 showwarning）；或者补上最后一步的进度行。"""
        if self.bar is not None:
            self.bar.close()
            warnings.showwarning = self._showwarning
            self.bar = None
        elif self.mode == "lines" and self.step > self.shown_step:
            self._write_line()
        self.mode = "off"
