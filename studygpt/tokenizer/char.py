"""字符级分词器 (character-level tokenizer) 与 vocab.txt。

一个字符就是一个词元 (token)：`你好` → [你, 好]。空格、制表符、换行也都是真正的字符，
有自己的编号，不会变成 `<unk>`。

特殊词元 (special tokens) 固定排在词表最前面，编号固定（别处写的同格式 vocab.txt 也能直接读）：
    <|user|> 0 · <|assistant|> 1 · <|end|> 2 · <pad> 3 · <unk> 4 · <bos> 5 · <eos> 6
它们只能由程序按编号插入（见 tokenizer/chat_format.py）。用户输入的文字 `<|end|>` 只是 7 个普通字符，
`encode` 不会把它认成控制词元——否则用户就能"注入"对话结构 (prompt injection)。

vocab.txt 每行 `token<TAB>id`。换行、回车这类字符无法原样写在一行里，写成两个字符 `\\n`、`\\r`；
因为普通词元只有一个字符，两个字符的 `\\n` 不会和任何普通词元混淆。
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

from studygpt.errors import StudyGPTError
from studygpt.tokenizer.specials import (
    CONTROL_TOKENS,
    EXTRA_TOKENS,
    SPECIAL_TOKENS,
    UNK,
)

# vocab.txt 里需要转义的字符 (characters that cannot stand on a line of their own)
_ESCAPES = {"\n": "\\n", "\r": "\\r"}
_UNESCAPES = {v: k for k, v in _ESCAPES.items()}
_MAX_CODEPOINT = 0x110000  # Unicode 码位上限 (one past the largest code point)
_SURROGATES = range(0xD800, 0xE000)  # 代理字符 (surrogates)：不是文字，写不进 UTF-8 的 vocab.txt，只能是 <unk>


def count_codepoints(texts: Iterable[str], chunk_chars: int = 1 << 22) -> np.ndarray:
    """数每个字符出现几次：返回按 Unicode 码位索引的计数数组 (counts indexed by code point)。

    把许多段文字拼成一大块，一次转成码位再用 np.bincount 计数：比逐段 Counter.update 快得多
    （实测见 docs/performance.md）。surrogatepass：个别孤立的代理字符 (lone surrogate) 也照常计数，不报错。
    """
    counts = np.zeros(_MAX_CODEPOINT, dtype=np.int64)
    block: list[str] = []
    size = 0

    def flush() -> None:
        codepoints = np.frombuffer("".join(block).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        counts[:] += np.bincount(codepoints, minlength=_MAX_CODEPOINT)
        block.clear()

    for text in texts:
        block.append(text)
        size += len(text)
        if size >= chunk_chars:
            flush()
            size = 0
    flush()
    return counts


class Tokenizer:
    """字符 ↔ 编号 (char ↔ id)。

    `vocab`: dict token → id；`id_to_token`: list，下标即编号。
    编码用一张按 Unicode 码位索引的查找表 (lookup table)，整段文字一次查完，
    不在 Python 里逐字符循环，所以每秒能编码上千万个字符。
    """

    file_name = "vocab.txt"  # 检查点里存词表的文件名（字节级 BPE 存 tokenizer.json，见 tokenizer/bpe.py）

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.id_to_token: list[str] = []
        self._table: np.ndarray | None = None  # 码位 → 编号 (code point → id)

    # ===== 1. 建词表 (build the vocabulary) =====
    def build_vocab(self, texts: Iterable[str], max_vocab_size: int = 10000, min_count: int = 1) -> "Tokenizer":
        """按字符频率建词表：特殊词元在前，其余按出现次数从高到低（次数相同按字符排序，保证可复现）。

        texts: 任意多段文字；max_vocab_size: 词表总大小上限（含 7 个特殊词元）；
        min_count: 出现少于这么多次的字符不进词表，之后编码为 `<unk>`。返回 self。
        """
        if max_vocab_size <= len(SPECIAL_TOKENS):
            raise StudyGPTError(f"max_vocab_size={max_vocab_size} 太小：至少要大于特殊词元数 {len(SPECIAL_TOKENS)}。")
        if min_count < 1:
            raise StudyGPTError(f"min_count={min_count} 无效：请用 ≥ 1 的整数。")
        counts = count_codepoints(texts)  # counts[码位] = 出现次数
        counts[_SURROGATES.start:_SURROGATES.stop] = 0
        codepoints = np.flatnonzero(counts >= min_count)
        order = np.lexsort((codepoints, -counts[codepoints]))  # 次数从高到低；次数相同按码位（即按字符）排序
        chars = [chr(c) for c in codepoints[order[: max_vocab_size - len(SPECIAL_TOKENS)]]]
        return self._set_tokens(SPECIAL_TOKENS + chars)

    def _set_tokens(self, tokens: list[str]) -> "Tokenizer":
        self.id_to_token = list(tokens)
        self.vocab = {t: i for i, t in enumerate(tokens)}
        # 查找表：默认全是 <unk>，再把每个单字符词元的码位填上它的编号
        table = np.full(_MAX_CODEPOINT, self.vocab[UNK], dtype=np.int32)
        for token, idx in self.vocab.items():
            if len(token) == 1:
                table[ord(token)] = idx
        self._table = table
        return self

    def add_tokens(self, tokens: Iterable[str]) -> list[str]:
        """把词表里还没有的词元追加到末尾（已有的编号都不变），返回真正新加的那些。

        第 16、17 章的 SFT 用它加上 <think>、<tool_call> 这些控制词元 (specials.EXTRA_TOKENS)，
        和新数据里快速上手的词表没见过的字（比如 JSON 的 `{`）。模型的嵌入矩阵随后要同样变大
        （DialogueModel.resize_vocab）。只接受单个字符或 EXTRA_TOKENS 里的控制词元。
        """
        self._require_vocab()
        new = [t for t in dict.fromkeys(tokens) if t not in self.vocab]
        bad = [t for t in new if len(t) != 1 and t not in EXTRA_TOKENS]
        if bad:
            raise StudyGPTError(f"字符级词表只能加单个字符或 {EXTRA_TOKENS}，收到 {bad[:3]}。")
        self._set_tokens(self.id_to_token + new)
        return new

    # ===== 2. 存取 vocab.txt (save / load) =====
    def save_vocab(self, path: str | Path) -> None:
        """写 `token<TAB>id` 每行一个，按编号排序。"""
        lines = [f"{_ESCAPES.get(t, t)}\t{i}\n" for i, t in enumerate(self.id_to_token)]
        Path(path).write_text("".join(lines), encoding="utf-8")

    def load_vocab(self, path: str | Path) -> "Tokenizer":
        """读 vocab.txt（每行 `token<TAB>id`，特殊词元编号如上）。返回 self，所以可以 `Tokenizer().load_vocab(p)`。"""
        path = Path(path)
        if not path.is_file():
            raise StudyGPTError(f"{path}: 找不到词表文件 (vocab file not found)；请先训练或用 --vocab 指定正确路径。")
        by_id: dict[int, str] = {}
        for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), start=1):
            if line.endswith("\r"):
                line = line[:-1]
            if line == "":
                continue
            token, sep, idx = line.rpartition("\t")  # 从右边切：词元本身可能就是制表符
            if not sep or not idx.strip().isdigit():
                raise StudyGPTError(f"{path}:{line_no}: 不是 `token<TAB>id` 格式：{line[:30]!r}；请检查这一行。")
            token = _UNESCAPES.get(token, token)
            if int(idx) in by_id:
                raise StudyGPTError(f"{path}:{line_no}: 编号 {idx} 重复出现；每个编号只能对应一个词元。")
            by_id[int(idx)] = token
        if sorted(by_id) != list(range(len(by_id))):
            raise StudyGPTError(f"{path}: 编号不连续（应为 0..{len(by_id) - 1}）；词表文件可能被截断或手工改坏了。")
        tokens = [by_id[i] for i in range(len(by_id))]
        if len(set(tokens)) != len(tokens):  # 同一个词元两个编号：编码只会用其中一个，另一个永远学不到
            twice = next(t for t, n in Counter(tokens).items() if n > 1)
            raise StudyGPTError(f"{path}: 词元 {twice!r} 出现了不止一次；每个词元只能有一个编号。")
        odd = next((t for t in tokens if len(t) != 1 and t not in CONTROL_TOKENS), None)
        if odd is not None:  # 多字符的普通词元永远编码不出来：多半是手工改错了
            raise StudyGPTError(f"{path}: 词元 {odd!r} 不是单个字符，也不是控制词元 {sorted(CONTROL_TOKENS)}；请检查这个文件。")
        missing = [t for t in SPECIAL_TOKENS if t not in tokens]
        if missing:
            raise StudyGPTError(f"{path}: 缺少特殊词元 {missing}；StudyGPT 的词表必须包含 {SPECIAL_TOKENS}。")
        return self._set_tokens(tokens)

    # ===== 3. 编码与解码 (encode / decode) =====
    @property
    def vocab_size(self) -> int:
        return len(self.id_to_token)

    def _require_vocab(self) -> np.ndarray:
        if self._table is None:
            raise StudyGPTError("分词器还没有词表：请先 build_vocab(...) 或 load_vocab('vocab.txt')。")
        return self._table

    def encode_array(self, text: str) -> np.ndarray:
        """文字 → 编号数组 (int32)。特殊词元的写法在这里只是普通字符，不会被识别。"""
        table = self._require_vocab()
        # UTF-32 里每个字符正好 4 字节，等于它的码位：一次转换拿到所有码位，再一次查表
        # surrogatepass：孤立的代理字符也照常查表（得到 <unk>），不报错
        codepoints = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        return table[codepoints]

    def encode(self, text: str) -> list[int]:
        """文字 → 编号列表 (list[int])。"""
        return self.encode_array(text).tolist()

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """编号 → 文字。skip_special=True 时去掉除 `<unk>` 之外的特殊词元（`<unk>` 保留，让人看见未知字）。"""
        out = []
        for i in ids:
            token = self.id_to_token[int(i)]
            if skip_special and token in CONTROL_TOKENS and token != UNK:
                continue
            out.append(token)
        return "".join(out)

    def token_id(self, token: str) -> int:
        """特殊词元的编号，如 token_id('<|end|>') → 2。词表里没有这个词元时（如还没加 <think> 的模型）一句话说明。"""
        if token not in self.vocab:
            raise StudyGPTError(f"这个模型的词表里没有 {token}：它没有学过思考/工具格式；请用 `studygpt sft --format think|tool` 训练出的模型。")
        return self.vocab[token]

    def char_lengths(self) -> np.ndarray:
        """每个编号代表几个字符：普通词元是它的长度，`<unk>` 代表 1 个未知字符，其他特殊词元是 0。
        评估时用它把"每词元的损失"换算成"每字符的比特数" (bits per character)。"""
        lengths = [len(t) if t not in CONTROL_TOKENS else int(t == UNK) for t in self.id_to_token]
        return np.asarray(lengths, dtype=np.int64)

    def vocab_hash(self) -> str:
        """词表内容的指纹 (fingerprint)：检查点和缓存用它确认词表没变。"""
        return hashlib.sha256("\n".join(self.id_to_token).encode("utf-8")).hexdigest()[:16]

    def save(self, folder: str | Path) -> Path:
        """写 folder/vocab.txt，返回它的路径。两种分词器都有 save(folder)，检查点不必知道是哪一种。"""
        path = Path(folder) / self.file_name
        self.save_vocab(path)
        return path

    def describe(self) -> str:
        control = sum(t in CONTROL_TOKENS for t in self.id_to_token)
        return f"字符级 (character)：{control} 个特殊词元 + {self.vocab_size - control} 个字符"

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"


