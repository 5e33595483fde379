"""第 9 章参考答案：distinct-n、重复率、每字符比特数。"""
import math
from typing import Sequence


def _ngrams(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(len(text) - n + 1)]


def distinct_n(replies: Sequence[str], n: int) -> float:
    grams = [g for reply in replies for g in _ngrams(reply, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(replies: Sequence[str], n: int = 3) -> float:
    rates = [1 - len(set(g)) / len(g) for g in (_ngrams(r, n) for r in replies) if g]
    return sum(rates) / len(rates) if rates else 0.0


def bits_per_char(total_nll_nats: float, n_chars: int) -> float:
    return total_nll_nats / (math.log(2) * n_chars)  # 1 nat = 1/ln2 bit
