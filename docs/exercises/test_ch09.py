"""第 9 章练习的测试：pytest docs/exercises -k ch09。参照答案是 studygpt/evaluation/metrics.py。"""
import math

import pytest
from exercise_loader import load

from studygpt.evaluation import metrics as evaluate

ex = load("ch09_metrics")
REPLIES = ["你好！我是StudyGPT。", "哈哈哈哈哈哈", "我是我是我是", "好", ""]


def test_distinct_n_matches_studygpt():
    assert ex.distinct_n(["abab", "ab"], 1) == pytest.approx(1 / 3)
    for n in (1, 2, 3):
        assert ex.distinct_n(REPLIES, n) == pytest.approx(evaluate.distinct_n(REPLIES, n))
    assert ex.distinct_n(["", "a"], 2) == 0.0


def test_repetition_rate_matches_studygpt():
    assert ex.repetition_rate(["哈哈哈哈"], 3) == pytest.approx(0.5)
    assert ex.repetition_rate(REPLIES, 3) == pytest.approx(evaluate.repetition_rate(REPLIES, 3))
    assert ex.repetition_rate(["好"], 3) == 0.0


def test_bits_per_char():
    assert ex.bits_per_char(math.log(2) * 10, 10) == pytest.approx(1.0)  # 每个字 1 比特：像抛一次硬币
    assert ex.bits_per_char(math.log(4096) * 5, 5) == pytest.approx(12.0)  # 4096 个字里瞎猜：12 比特
