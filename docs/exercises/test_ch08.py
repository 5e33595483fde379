"""第 8 章练习的测试：pytest docs/exercises -k ch08。参照答案是生成时真正用的 process_logits。"""
import torch

from exercise_loader import load
from studygpt.generate import SamplingConfig, process_logits

ex = load("ch08_sampling")
LOGITS = torch.tensor([3.2, 0.1, 2.4, -1.0, 2.0, 1.5, 0.5, 0.3])


def test_temperature_matches_studygpt():
    for t in (0.5, 1.0, 1.5):
        torch.testing.assert_close(ex.apply_temperature(LOGITS, t), process_logits(LOGITS, SamplingConfig(t), []))


def test_top_k_matches_studygpt():
    for k in (1, 3, 5):
        expected = process_logits(LOGITS, SamplingConfig(temperature=1.0, top_k=k), [])
        torch.testing.assert_close(ex.top_k_filter(LOGITS, k), expected)


def test_top_p_matches_studygpt():
    for p in (0.3, 0.5, 0.9, 0.99):
        expected = process_logits(LOGITS, SamplingConfig(temperature=1.0, top_p=p), [])
        torch.testing.assert_close(ex.top_p_filter(LOGITS, p), expected)
