"""第 1 章练习：自己写一个二元语言模型 (bigram language model)。检查：pytest docs/exercises -k ch01

语言模型就是"给定前文，下一个词元的概率分布"。最简单的前文只有一个字：P(下一个字 | 这个字)。
"""
from collections import Counter


def count_pairs(texts: list[str]) -> dict[str, Counter]:
    """练习 1.1：数相邻的两个字。返回 {字 a: Counter({紧跟在 a 后面的字 b: 次数})}。

    只数同一段文字里相邻的字，不跨文字。例：["你好你"] → {"你": Counter({"好": 1}), "好": Counter({"你": 1})}。
    """
    raise NotImplementedError("练习 1.1：数相邻的两个字 (count adjacent pairs)")


def next_char_probs(pairs: dict[str, Counter], char: str) -> dict[str, float]:
    """练习 1.2：P(b | char) = count(char, b) / count(char, 任何字)。返回 {b: 概率}，概率之和为 1。"""
    raise NotImplementedError("练习 1.2：把次数变成概率 (counts → probabilities)")


def average_nll(pairs: dict[str, Counter], texts: list[str]) -> float:
    """练习 1.3：texts 里每一对相邻的字 (a, b) 的 −ln P(b | a) 的平均值（单位 nat），即平均交叉熵。

    提示：可以用 next_char_probs。一个能完美预测的模型得 0；每个字一样可能时得 ln(V)。
    """
    raise NotImplementedError("练习 1.3：平均负对数似然 (average negative log-likelihood)")
