"""检索基线 (retrieval baseline)：在训练语料里找最像的上下文，把它后面的那句回答原样拿来。

一个模型若连"抄最像的训练回答"都比不过，说明它还没学会利用上下文。做法是最朴素的信息检索：

1. 每个上下文（回答前的所有话）拆成字符 1-gram 与 2-gram（不跨句），数出次数 tf；
2. 逆文档频率 (inverse document frequency) idf(g) = ln((1 + N) / (1 + df(g))) + 1，
   N 是训练上下文数，df(g) 是含 g 的上下文数：人人都说的"的""我"权重小，少见的词权重大；
3. 向量 = tf · idf，再除以它的长度 (L2 归一化)，两个向量的点积就是余弦相似度 (cosine similarity)；
4. 倒排索引 (inverted index)：每个 n-gram → [(上下文编号, 权重)]。查询时只走查询里出现的 n-gram 的列表，
   用 numpy 的 bincount 把分数加到各个上下文上，取最大的那个；不用把 3 万 × 词表的大矩阵摆出来。

相同分数取编号最小的（先出现的）上下文；与哪个训练上下文都没有共同的 n-gram 时，回退到最常见的回答。
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

RETRIEVAL_NGRAMS = (1, 2)  # 字符 1-gram 与 2-gram


def context_grams(context: Sequence[str]) -> Counter:
    """上下文（几句话）→ 字符 n-gram 的次数 tf；n-gram 不跨句，空白不算。"""
    grams: Counter = Counter()
    for turn in context:
        text = "".join(turn.split())
        for n in RETRIEVAL_NGRAMS:
            grams.update(text[i:i + n] for i in range(len(text) - n + 1))
    return grams


class RetrievalIndex:
    """训练里的 (上下文, 回答) 对 → 可以查询的 TF-IDF 倒排索引。

    入: contexts[i] 是第 i 个训练上下文（字符串列表），replies[i] 是它后面的回答；fallback 是
        查询与谁都不沾边时给的回答（通常是训练语料里最常见的回答）。
    """

    def __init__(self, contexts: Sequence[Sequence[str]], replies: Sequence[str], fallback: str) -> None:
        self.replies = list(replies)
        self.fallback = fallback
        counts = [context_grams(c) for c in contexts]
        df = Counter(g for grams in counts for g in grams)  # 每个 n-gram 出现在几个上下文里
        n_docs = len(counts)
        self.idf = {g: math.log((1 + n_docs) / (1 + d)) + 1 for g, d in df.items()}
        postings: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
        for doc, grams in enumerate(counts):
            weights = {g: tf * self.idf[g] for g, tf in grams.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for g, w in weights.items():
                docs, values = postings[g]
                docs.append(doc)
                values.append(w / norm)
        # 每个 n-gram 的列表存成两个 numpy 数组：查询时直接拼起来交给 bincount
        self.postings = {g: (np.array(d, dtype=np.int64), np.array(v)) for g, (d, v) in postings.items()}
        self.n_docs = n_docs

    def query(self, context: Sequence[str]) -> str:
        """与 context 余弦相似度最高的训练上下文后面的回答。"""
        weights = {g: tf * self.idf[g] for g, tf in context_grams(context).items() if g in self.idf}
        if not weights:
            return self.fallback
        norm = math.sqrt(sum(w * w for w in weights.values()))
        docs = np.concatenate([self.postings[g][0] for g in weights])
        values = np.concatenate([self.postings[g][1] * (w / norm) for g, w in weights.items()])
        scores = np.bincount(docs, weights=values, minlength=self.n_docs)  # (N,) 每个训练上下文的余弦
        return self.replies[int(np.argmax(scores))]  # argmax 在并列时取第一个：先出现的上下文
