"""第 2 章练习：字符级分词器 (character-level tokenizer)。检查：pytest docs/exercises -k ch02

对照：studygpt/tokenizer/char.py 的 Tokenizer.build_vocab / encode / decode。
"""
from typing import Sequence


def build_vocab(texts: Sequence[str], specials: Sequence[str]) -> dict[str, int]:
    """练习 2.1：建词表 {词元: 编号}。

    特殊词元按给定顺序排在最前面（编号 0, 1, 2, …）；其余每个不同的字按出现次数从多到少编号，
    次数相同时按字符本身排序（sorted 的顺序），保证每次结果一样。特殊词元的写法不再当作普通字重复编号。
    """
    raise NotImplementedError("练习 2.1：建词表 (build the vocabulary)")


def encode(text: str, vocab: dict[str, int], unk: str = "<unk>") -> list[int]:
    """练习 2.2：文字 → 编号列表。每个字一个编号；不在词表里的字用 vocab[unk]。"""
    raise NotImplementedError("练习 2.2：编码 (encode)")


def decode(ids: Sequence[int], vocab: dict[str, int]) -> str:
    """练习 2.3：编号 → 文字（encode 的逆运算）。提示：先把 vocab 反过来，得到 编号 → 词元。"""
    raise NotImplementedError("练习 2.3：解码 (decode)")
