"""训练进度的输出 (training progress output)：日志里没有回车，验证行不粘在进度条后面（issue #27 第 4 条）。

输出不是终端（管道、文件、CI）时：没有进度条，每隔几秒一行"进度 (progress)"，全文没有一个回车 \\r。
终端里：进度条照旧，但验证行、警告等写在进度条上方——用一个极小的"终端模拟器"把输出画成屏幕来检查。
"""
from __future__ import annotations

import io
import sys
import warnings

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.cli.parser import main
from studygpt.training import progress
from studygpt.training.progress import ProgressDisplay
from studygpt.training.trainer import TransformerTrainer
from tests.conftest import DIALOGUES, tiny_model

PROGRESS = "  进度 (progress) 第 "
VAL = "验证 (val)"
BAR_TEXT = ("step/s", "it/s", "tok_s=")  # tqdm 进度条特有的文字


class FakeTerminal(io.StringIO):
    """假装是终端的流：isatty() 为真，写进来的字都留着，之后用 screen() 画成屏幕。"""

    def isatty(self) -> bool:
        return True


def screen(text: str) -> list[str]:
    """像终端那样显示 text：\\r 回到行首、后写的字盖住先写的，\\n 换行。返回屏幕上的各行（去掉行尾空格）。"""
    lines, line, col = [], [], 0
    for ch in text:
        if ch == "\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
    return lines + ["".join(line).rstrip()]


def test_piped_quickstart_has_no_carriage_return_and_no_glued_lines(tmp_path, capsys, monkeypatch):
    """验收 (acceptance)：`studygpt quickstart --no-chat --max-steps 50 | cat` 的缩小版。
    capsys 接住的 stdout/stderr 不是终端，正像管道；进度行的间隔改成 0，每一步都写一行，不必真等 10 秒。"""
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    from studygpt.recipes import quickstart
    full = quickstart.run_quickstart  # 多轮考试只考 3 段（默认 100 段，没训练好的模型每句都写到最长，要一分多钟）
    monkeypatch.setattr(quickstart, "run_quickstart", lambda **kw: full(**kw, exam_conversations=3))
    steps = 6
    assert main(["quickstart", "--no-chat", "--max-steps", str(steps), "--max-minutes", "5",
                 "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "\r" not in text                                       # 没有一个回车：没有原地刷新的进度条
    assert not any(marker in text for marker in BAR_TEXT)         # 进度条一次也没画
    lines = text.splitlines()
    shown = [line for line in lines if line.startswith(PROGRESS)]
    assert [line.split("第 ")[1].split(" 步")[0] for line in shown] == [f"{k}/{steps}" for k in range(1, steps + 1)]
    assert "100%" in shown[-1] and "tok/s" in shown[-1] and "loss " in shown[-1]
    val_lines = [line for line in lines if VAL in line]
    assert val_lines and all(line.startswith(f"  {VAL} 第 ") for line in val_lines)  # 验证行独占一行
    assert not any(VAL in line and "进度 (progress)" in line for line in lines)


def test_progress_lines_come_every_interval_with_loss_speed_and_time_left():
    """假钟 (fake clock)：每步 3 秒、间隔 10 秒 → 第 1、5、9 步各一行，结束时补上最后一步。"""
    now = [0.0]
    written: list[str] = []
    display = ProgressDisplay(written.append, stream=io.StringIO(), every_s=10.0, clock=lambda: now[0])
    display.start(total=100)
    for step in range(1, 11):
        now[0] = 3.0 * step
        display.update(step, loss=2.0 + step, tokens=300, progress=step / 100, elapsed=3.0 * step)
    display.close()
    assert [line.split("第 ")[1].split(" 步")[0] for line in written] == ["1/100", "5/100", "9/100", "10/100"]
    assert "还要约" not in written[0]   # 第一步之后还没有可外推的已用时间
    # 第 2–5 步：loss 平均 (4+5+6+7)/4 = 5.5；1200 个词元 / 12 秒 = 100 tok/s；已用 15 秒，进度 5% → 还要 285 秒
    assert written[1] == "  进度 (progress) 第 5/100 步 · 5% · loss 5.500 · 100 tok/s · 已用 0:15 · 还要约 4:45"


def test_terminal_log_lines_and_warnings_go_above_the_bar(monkeypatch):
    """终端里：验证行与警告经过 ProgressDisplay（训练器的 self.log）→ 各占一行，进度条在它们下面重画。"""
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.setattr(sys, "stderr", term)  # 进度条写 stderr、日志写 stdout，在终端里混在同一块屏幕上
    monkeypatch.setattr(warnings, "showwarning",
                        lambda message, category, *args, **kwargs: sys.stderr.write(f"{category.__name__}: {message}\n"))
    display = ProgressDisplay(print).start(total=10)
    assert display.mode == "bar"
    for step in range(1, 6):
        display.update(step, loss=3.0, tokens=100, progress=step / 10, elapsed=step)
        display.set_postfix(loss="3.000")
    display.write(f"  {VAL} 第 5 步 · loss 2.900")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("小心 (careful)")
    display.update(6, loss=3.0, tokens=100, progress=0.6, elapsed=6)
    print("直接 print：没经过 display")  # 反例：绕过 display 的一行会粘在进度条后面
    display.close()
    rows = screen(term.getvalue())
    assert f"  {VAL} 第 5 步 · loss 2.900" in rows
    assert "UserWarning: 小心 (careful)" in rows
    glued = next(row for row in rows if "直接 print" in row)
    assert "step/s" in glued and glued.endswith("直接 print：没经过 display")   # 反例确实粘在了进度条后面
    assert not any(VAL in row and any(m in row for m in BAR_TEXT) for row in rows)


def test_no_progress_shows_neither_bar_nor_lines_but_keeps_validation(tokenizer, tmp_path, capsys, monkeypatch):
    """--no-progress（progress=False）：没有进度条、没有进度行；验证行照常打印。"""
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    windows = build_windows(DIALOGUES * 6, tokenizer, 64)
    batches = PackedBatches(windows, batch_size=2, seq_len=64, pad_id=tokenizer.vocab["<pad>"], seed=0)
    config = {"lr": 3e-3, "use_amp": False, "max_steps": 3, "eval_every": 1, "save_every": 0}
    trainer = TransformerTrainer(tiny_model(tokenizer.vocab_size), batches, "cpu", config, val_loader=batches,
                                 tokenizer=tokenizer, out_dir=tmp_path, progress=False)
    trainer.train()
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert VAL in text and "进度 (progress)" not in text and "\r" not in text
    assert not any(marker in text for marker in BAR_TEXT)
