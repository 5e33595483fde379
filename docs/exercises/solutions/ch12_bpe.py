"""第 12 章参考答案：最常见的相邻对、一步合并、每个词元几个字符。"""
from collections import Counter
from typing import Callable, Sequence


def most_common_pair(ids: Sequence[int]) -> tuple[int, int]:
    counts = Counter(zip(ids, ids[1:]))            # Counter 记得插入顺序：次数相同时先出现的排前面
    return max(counts, key=counts.__getitem__)     # max 遇到并列时返回第一个


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2                                  # 跳过被合并的两个
        else:
            out.append(ids[i])
            i += 1
    return out


def chars_per_token(texts: Sequence[str], encode: Callable[[str], list[int]]) -> float:
    tokens = sum(len(encode(t)) for t in texts)
    return sum(len(t) for t in texts) / tokens if tokens else 0.0
