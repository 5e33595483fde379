"""第 1 章练习的测试：pytest docs/exercises -k ch01"""
import math
from collections import Counter

import pytest
from exercise_loader import load

ex = load("ch01_bigram")


def test_count_pairs_counts_neighbours_within_each_text():
    assert ex.count_pairs(["你好你好", "你们"]) == {"你": Counter({"好": 2, "们": 1}), "好": Counter({"你": 1})}


def test_next_char_probs_are_a_distribution():
    probs = ex.next_char_probs(ex.count_pairs(["你好你好", "你们"]), "你")
    assert probs == pytest.approx({"好": 2 / 3, "们": 1 / 3})
    assert sum(probs.values()) == pytest.approx(1.0)


def test_average_nll_is_zero_when_certain_and_ln2_for_a_coin_flip():
    certain = ["abab"]
    assert ex.average_nll(ex.count_pairs(certain), certain) == pytest.approx(0.0)
    coin = ["ab", "ac"]  # a 后面一半是 b，一半是 c
    assert ex.average_nll(ex.count_pairs(coin), coin) == pytest.approx(math.log(2))
