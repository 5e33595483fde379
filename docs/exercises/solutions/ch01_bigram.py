"""第 1 章参考答案：二元语言模型 (bigram language model)。"""
import math
from collections import Counter, defaultdict


def count_pairs(texts: list[str]) -> dict[str, Counter]:
    pairs: dict[str, Counter] = defaultdict(Counter)
    for text in texts:
        for a, b in zip(text, text[1:]):  # 相邻的两个字：(第 0, 第 1)、(第 1, 第 2) ……
            pairs[a][b] += 1
    return dict(pairs)


def next_char_probs(pairs: dict[str, Counter], char: str) -> dict[str, float]:
    total = sum(pairs[char].values())
    return {b: n / total for b, n in pairs[char].items()}


def average_nll(pairs: dict[str, Counter], texts: list[str]) -> float:
    losses = [-math.log(next_char_probs(pairs, a)[b]) for t in texts for a, b in zip(t, t[1:])]
    return sum(losses) / len(losses)
