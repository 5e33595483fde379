"""第 2 章参考答案：字符级分词器。"""
from collections import Counter
from typing import Sequence


def build_vocab(texts: Sequence[str], specials: Sequence[str]) -> dict[str, int]:
    counts = Counter()
    for text in texts:
        counts.update(text)  # 对字符串按字符计数
    chars = sorted((c for c in counts if c not in specials), key=lambda c: (-counts[c], c))
    return {token: i for i, token in enumerate(list(specials) + chars)}


def encode(text: str, vocab: dict[str, int], unk: str = "<unk>") -> list[int]:
    return [vocab.get(c, vocab[unk]) for c in text]


def decode(ids: Sequence[int], vocab: dict[str, int]) -> str:
    id_to_token = {i: t for t, i in vocab.items()}
    return "".join(id_to_token[i] for i in ids)
