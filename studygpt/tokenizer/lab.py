"""分词器实验室 (tokenizer lab)：训练一个分词器，并量一量它把文字切成了多少个词元。

    studygpt tokenizer train --data FILE.conv … --type bpe|char --vocab-size N --out DIR

字符级 (char) 写出 DIR/vocab.txt，字节级 BPE 写出 DIR/tokenizer.json；之后
`studygpt train --tokenizer DIR`、`studygpt quickstart --tokenizer DIR`、`studygpt tokenize --vocab DIR` 都能用它。
benchmarks/tokenizer_compare.py 用这里的 `token_stats` 比较两种分词器（第 12 章）。
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from studygpt.errors import StudyGPTError
from studygpt.tokenizer.char import Tokenizer

TOKENIZER_TYPES = ("char", "bpe")


def train_tokenizer(texts: Sequence[str], kind: str, vocab_size: int):
    """texts → 字符级 Tokenizer（按频率取前 vocab_size 个）或 BPETokenizer（合并到 vocab_size 个）。"""
    if kind == "char":
        return Tokenizer().build_vocab(texts, max_vocab_size=vocab_size)
    if kind == "bpe":
        from studygpt.tokenizer.bpe import BPETokenizer
        return BPETokenizer.train(texts, vocab_size=vocab_size)
    raise StudyGPTError(f"--type {kind!r} 不认识；可选 {' / '.join(TOKENIZER_TYPES)}。")


def token_stats(tokenizer, texts: Sequence[str]) -> dict:
    """一个分词器在一批文字上的表现：每个词元平均几个字符、每句几个词元（中位数与 95 分位）、<unk> 比例。"""
    from studygpt.tokenizer.specials import UNK
    unk = tokenizer.token_id(UNK)
    lengths = np.asarray([len(tokenizer.encode(t)) for t in texts])
    chars = sum(len(t) for t in texts)
    unknown = sum(int((tokenizer.encode_array(t) == unk).sum()) for t in texts)
    return {"chars_per_token": chars / max(int(lengths.sum()), 1), "tokens_median": float(np.median(lengths)),
            "tokens_p95": float(np.percentile(lengths, 95)), "unk_tokens": unknown, "texts": len(texts)}


def run_tokenizer_train(data: Sequence[str], kind: str, vocab_size: int, out: str | Path) -> Path:
    """`studygpt tokenizer train` 的全部工作：读语料 → 训练 → 存到 out → 打印一个例子和统计。返回写出的文件。"""
    from studygpt.corpus.read import read_dialogues
    texts = []
    for path in data:
        dialogues, report = read_dialogues(path)
        print(report.summary())
        texts += [t for d in dialogues for t in d]
    tokenizer = train_tokenizer(texts, kind, vocab_size)
    Path(out).mkdir(parents=True, exist_ok=True)
    written = tokenizer.save(out)
    stats = token_stats(tokenizer, texts[:20000])
    example = next((t for t in texts if len(t) >= 8), texts[0])
    print(f"词表 (vocab): {tokenizer.vocab_size:,}（{tokenizer.describe()}）")
    print(f"例子 (example): {example}\n  → " + " | ".join(tokenizer.id_to_token[i] for i in tokenizer.encode(example)))
    print(f"平均每个词元 {stats['chars_per_token']:.2f} 个字符 (chars per token) · 每句词元数中位数 "
          f"{stats['tokens_median']:.0f}，95 分位 {stats['tokens_p95']:.0f} · <unk> {stats['unk_tokens']} 个")
    print(f"已保存 (saved): {written}  ·  使用：studygpt train --tokenizer {out} --data … --out runs/NAME")
    return written
