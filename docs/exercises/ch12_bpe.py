"""第 12 章练习：BPE 的一步合并，与"每个词元几个字符"。检查：pytest docs/exercises -k ch12

BPE 的训练就是反复做两件事：数出最常相邻的一对词元 (most_common_pair)，把它合并成一个新词元 (merge_pair)。
对照：studygpt/tokenizer/bpe.py（训练交给 Hugging Face tokenizers）与 studygpt/tokenizer/lab.py 的 token_stats。
"""
from typing import Callable, Sequence


def most_common_pair(ids: Sequence[int]) -> tuple[int, int]:
    """练习 12.1：数每一对相邻编号 (ids[i], ids[i+1]) 出现的次数，返回次数最多的一对。

    次数相同时，返回在序列里最先出现的那一对。ids 至少有 2 个元素。
    例：[1, 2, 3, 1, 2] → (1, 2)（出现 2 次）。
    """
    raise NotImplementedError("练习 12.1：最常见的相邻对 (most common pair)")


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """练习 12.2：一步合并 (one merge step)：从左到右扫描，每遇到相邻的 pair 就换成 new_id（两个变一个）。

    合并过的位置不再参与下一次匹配：[5, 5, 5] 合并 (5, 5) → [new_id, 5]。
    例：merge_pair([1, 2, 3, 1, 2], (1, 2), 9) → [9, 3, 9]。
    """
    raise NotImplementedError("练习 12.2：合并一对 (merge a pair)")


def chars_per_token(texts: Sequence[str], encode: Callable[[str], list[int]]) -> float:
    """练习 12.3：一批文字平均每个词元几个字符 = 总字符数 / 总词元数（encode 把一段文字变成编号列表）。

    字符级分词器是 1.0；BPE 把常见的词合成一个词元，所以大于 1。没有词元时返回 0.0。
    """
    raise NotImplementedError("练习 12.3：每个词元几个字符 (chars per token)")
