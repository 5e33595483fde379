"""第 8 章练习的测试：pytest docs/exercises -k ch08。参照答案是生成时真正用的 process_logits。"""
import torch
from exercise_loader import load
from explain import explain_logits

from studygpt.generation.generate import SamplingConfig, process_logits

ex = load("ch08_sampling")
LOGITS = torch.tensor([3.2, 0.1, 2.4, -1.0, 2.0, 1.5, 0.5, 0.3])


def test_temperature_matches_studygpt():
    for t in (0.5, 1.0, 1.5):
        msg = explain_logits(ex.apply_temperature(LOGITS, t), process_logits(LOGITS, SamplingConfig(t), []),
                             f"temperature={t}", LOGITS, "（温度：logits 除以 T）")
        assert msg is None, msg


def test_top_k_matches_studygpt():
    for k in (1, 3, 5):
        expected = process_logits(LOGITS, SamplingConfig(temperature=1.0, top_k=k), [])
        msg = explain_logits(ex.top_k_filter(LOGITS, k), expected, f"top_k={k}", LOGITS)
        assert msg is None, msg


def test_top_p_matches_studygpt():
    for p in (0.3, 0.5, 0.9, 0.99):
        expected = process_logits(LOGITS, SamplingConfig(temperature=1.0, top_p=p), [])
        msg = explain_logits(ex.top_p_filter(LOGITS, p), expected, f"top_p={p}", LOGITS)
        assert msg is None, msg
