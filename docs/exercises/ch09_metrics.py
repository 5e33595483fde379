"""第 9 章练习：三个评估指标。检查：pytest docs/exercises -k ch09

对照：studygpt/evaluation/metrics.py 的 distinct_n、repetition_rate 与 loss_summary 里的 bpc。
"""
from typing import Sequence


def distinct_n(replies: Sequence[str], n: int) -> float:
    """练习 9.1：所有回答里不同的字符 n-gram 数 / n-gram 总数（n-gram 不跨回答）；一个 n-gram 都没有时为 0。

    例：["abab", "ab"] 的 1-gram 共 6 个、2 种 → 1/3。
    """
    raise NotImplementedError("练习 9.1：distinct-n")


def repetition_rate(replies: Sequence[str], n: int = 3) -> float:
    """练习 9.2：每条回答算 1 − 不同的 n-gram 数 / n-gram 总数，再对回答取平均。
    短于 n 个字的回答不参与平均；一条都没有时为 0。例 (n=3)："哈哈哈哈" → 0.5。"""
    raise NotImplementedError("练习 9.2：回答内部的重复率 (repetition rate)")


def bits_per_char(total_nll_nats: float, n_chars: int) -> float:
    """练习 9.3：每字符比特数 (bits per character)：总损失（单位 nat，以 e 为底）换成以 2 为底，再除以字符数。"""
    raise NotImplementedError("练习 9.3：每字符比特数 (bits per character)")
