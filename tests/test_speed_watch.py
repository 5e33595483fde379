"""训练途中速度变了就重新估计 (SpeedWatch)：别的程序占了 CPU 时，日志要说出来，预测也要跟着改。"""
from __future__ import annotations

import re

from studygpt.training.forecast import RECENT_STEPS, SpeedWatch


def test_a_slowdown_is_said_once_with_a_new_estimate_and_a_recovery_too():
    watch = SpeedWatch(reference_seconds=0.1, steps_per_epoch=100, total_steps=None, max_minutes=1.0)
    step, elapsed, said = 0, 0.0, []
    for seconds in [0.1] * RECENT_STEPS + [0.3] * RECENT_STEPS + [0.1] * RECENT_STEPS:
        step, elapsed = step + 1, elapsed + seconds
        if (news := watch.observe(step, seconds, elapsed)) is not None:
            said.append((step, news))
    assert len(said) == 2
    (slow_step, slow), (back_step, back) = said
    assert "变慢了" in slow and "恢复了" in back and slow_step < back_step
    # 最近 20 步的中位数一过开始时的 1.5 倍就说（慢步还没占满窗口时中位数是 0.2 秒）；预计按这个最近的速度重算
    now = float(re.search(r"最近每步 ([0-9.]+) 秒", slow)[1])
    assert now >= 1.5 * 0.1 and f"慢 {now / 0.1:.1f} 倍" in slow
    elapsed = RECENT_STEPS * 0.1 + (slow_step - RECENT_STEPS) * 0.3
    assert f"一共约 {slow_step + int((60 - elapsed) / now):,} 步" in slow


def test_steady_speed_says_nothing():
    watch = SpeedWatch(0.2, steps_per_epoch=None, total_steps=500, max_minutes=None)
    assert all(watch.observe(s, 0.22, s * 0.22) is None for s in range(1, 200))


def test_step_budget_estimate_counts_the_steps_left():
    watch = SpeedWatch(0.1, steps_per_epoch=50, total_steps=300, max_minutes=None)
    assert watch.remaining_text(100, 0.5, 10.0) == "还要约 1.7 分钟，一共约 300 步，约 6.00 个 epoch"


def test_the_trainer_logs_what_the_watch_says(tokenizer, tmp_path, monkeypatch):
    """训练器在测完开始的速度之后，每一步都问 SpeedWatch；它说了话就写进日志。"""
    from tests.test_train import make_trainer
    monkeypatch.setattr(SpeedWatch, "observe", lambda self, step, seconds, elapsed: f"假的提示 第 {step} 步")
    lines = []
    trainer = make_trainer(tokenizer, tmp_path, max_steps=12)
    trainer.log = trainer.display.write = lines.append
    trainer.train()
    assert any(line.strip().startswith("假的提示 第 12 步") for line in lines)
