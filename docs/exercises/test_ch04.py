"""第 4 章练习的测试：pytest docs/exercises -k ch04"""
import torch
from exercise_loader import load
from explain import explain_length, explain_rope_table, explain_rotation, explain_same_scores

from studygpt.model.transformer import apply_rope, rope_tables

ex = load("ch04_rope")
HS, T = 16, 32


def test_angles_match_studygpt():
    cos, sin = ex.rope_angles(HS, T)
    ref_cos, ref_sin = rope_tables(HS, T, 10000.0)
    assert (msg := explain_rope_table(cos, ref_cos, "cos", HS, 10000.0)) is None, msg
    assert (msg := explain_rope_table(sin, ref_sin, "sin", HS, 10000.0)) is None, msg


def test_rotation_matches_studygpt_and_keeps_the_length():
    cos, sin = rope_tables(HS, T, 10000.0)
    x = torch.randn(2, 4, T, HS)  # (B, nh, T, hs)
    y = ex.rotate(x, cos, sin)
    assert (msg := explain_rotation(y, x, cos, sin, apply_rope(x, cos[None, None], sin[None, None]))) is None, msg
    assert (msg := explain_length(y, x)) is None, msg  # 旋转不改变长度


def test_score_depends_only_on_the_distance():
    cos, sin = rope_tables(HS, T, 10000.0)
    q, k = torch.randn(HS), torch.randn(HS)
    q_rot = ex.rotate(q.expand(T, HS), cos, sin)  # 同一个 q 放在每个位置上
    k_rot = ex.rotate(k.expand(T, HS), cos, sin)
    scores = [float(q_rot[m] @ k_rot[m - 3]) for m in range(3, T)]  # 相距 3 的所有位置对
    assert (msg := explain_same_scores(scores, 3)) is None, msg
