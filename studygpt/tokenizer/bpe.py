"""字节级 BPE 分词器 (byte-level BPE tokenizer)：字符级分词器之外的第二种分词器。

BPE (byte pair encoding) 从单个字节出发，反复把语料里最常相邻出现的一对词元合并成一个新词元，
直到词表达到 vocab_size。常见的词（"你好"、"什么"）于是成了一个词元，生僻字拆成几个字节。
训练交给 Hugging Face `tokenizers`（Rust 写的，几秒训完几十万句）；这里只负责把它接到 StudyGPT 上：

- 与字符级 `Tokenizer` 同一套方法：encode / encode_array / decode / token_id / vocab_size / id_to_token /
  char_lengths / vocab_hash / save，所以对话格式、打包、训练、评估、生成、服务都不必知道用的是哪一种；
- 特殊词元与字符级相同、编号也相同（0..6）。用户打出的 `<|end|>` 照样只是普通文字：
  `encode_special_tokens = True` 让 `tokenizers` 编码时不识别特殊词元，它们只能由 chat_format 按编号插入；
- 一个汉字在 UTF-8 里是 3 个字节，可能被拆进两个词元。`id_to_token` 把每个词元的字节解码成可读文字，
  不完整的字节写成 `<0xE4>`；`char_lengths` 按"这个词元里有几个字符的开头字节"数字符，
  所以一段完整文字的各词元加起来正好是它的字符数，每字符比特数 (bpc) 与字符级分词器可以公平比较。

存成一个 tokenizer.json（`tokenizers` 与 transformers 的标准格式；`.hf` 就是底层的 tokenizers.Tokenizer，导出时直接用）。
"""
from __future__ import annotations

import hashlib
import json
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

FILE_NAME = "tokenizer.json"


def _byte_decoder() -> dict[str, int]:
    """字节级 BPE 把 256 个字节各写成一个可见字符（GPT-2 的 bytes_to_unicode 表）；这里反查：可见字符 → 字节。"""
    from tokenizers import pre_tokenizers
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) not in " \xa0\xad"]
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[chr(b)] = b
        else:
            mapping[chr(256 + extra)] = b  # 不可见的字节挪到 256 以后的码位
            extra += 1
    assert set(mapping) == set(pre_tokenizers.ByteLevel.alphabet())  # 与 tokenizers 用的是同一张表
    return mapping


def readable(data: bytes) -> str:
    """字节 → 可读文字：完整的 UTF-8 字符照原样，不完整的字节写成 <0xE4>。"""
    out, i = [], 0
    while i < len(data):
        for n in (1, 2, 3, 4):  # 从这里开始的最短的完整字符
            try:
                out.append(data[i:i + n].decode("utf-8"))
                i += n
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(f"<0x{data[i]:02X}>")
            i += 1
    return "".join(out)


class BPETokenizer:
    """BPETokenizer.train(texts, vocab_size) 或 BPETokenizer.load("tokenizer.json" 或其所在目录)。"""

    file_name = FILE_NAME

    def __init__(self, hf) -> None:
        self.hf = hf  # 底层的 tokenizers.Tokenizer
        self.hf.encode_special_tokens = True  # 用户文字里的 `<|end|>` 只是普通字符（防止对话结构注入）
        ids = [self.hf.token_to_id(t) for t in SPECIAL_TOKENS]
        if ids != list(range(len(SPECIAL_TOKENS))):
            raise StudyGPTError(f"这个 tokenizer.json 的特殊词元编号是 {ids}，StudyGPT 要求 {SPECIAL_TOKENS} 依次为 0..6；"
                                "请用 `studygpt tokenizer train` 训练分词器。")
        to_byte = _byte_decoder()
        raw = [self.hf.id_to_token(i) for i in range(self.hf.get_vocab_size())]
        # 每个词元的原始字节（特殊词元没有字节：它们不是文字）
        try:
            self.token_bytes = [b"" if t in CONTROL_TOKENS else bytes(to_byte[c] for c in t) for t in raw]
        except KeyError as err:  # 如 `studygpt export --to hf` 写出的字符级 tokenizer.json：词元是汉字本身
            raise StudyGPTError(f"这个 tokenizer.json 不是字节级 BPE：词元里有 {err.args[0]!r} 这样的非字节写法"
                                "（像是导出给 Hugging Face 的分词器）；请给 `studygpt tokenizer train` 的输出目录或训练目录。") from None
        self.id_to_token = [t if t in CONTROL_TOKENS else readable(b) for t, b in zip(raw, self.token_bytes)]

    # ===== 1. 训练与存取 (train / save / load) =====
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> "BPETokenizer":
        """在 texts 上训练字节级 BPE：词表 = 7 个特殊词元 + 256 个字节 + 合并出来的词元，共 vocab_size 个。"""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers
        smallest = len(SPECIAL_TOKENS) + 256
        if vocab_size <= smallest:
            raise StudyGPTError(f"vocab_size={vocab_size} 太小：字节级 BPE 至少要 {smallest + 1}（7 个特殊词元 + 256 个字节 + 合并）。")
        hf = HFTokenizer(models.BPE())
        # 先按 GPT-2 的规则粗切（字母串、数字、标点、空格分开），合并只在切出的片段内部发生；
        # 一串汉字是一个片段，所以"你好"能合成一个词元，而"好，"不会
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        hf.train_from_iterator(texts, trainer)  # 每个字节都在初始字母表里：永远不会有 <unk>
        return cls(hf)

    def save(self, folder: str | Path) -> Path:
        """写 folder/tokenizer.json，返回它的路径。"""
        path = Path(folder) / FILE_NAME
        self.hf.save(str(path))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        """读 tokenizer.json（给目录时读其中的 tokenizer.json）。"""
        from tokenizers import Tokenizer as HFTokenizer
        path = Path(path)
        path = path / FILE_NAME if path.is_dir() else path
        if not path.is_file():
            raise StudyGPTError(f"{path}: 找不到分词器文件；请先 `studygpt tokenizer train --type bpe --out DIR`。")
        try:
            hf = HFTokenizer.from_file(str(path))
        except Exception as err:  # tokenizers 的错误类型是通用 Exception
            raise StudyGPTError(f"{path}: 不是有效的 tokenizer.json（{str(err)[:80]}）；请重新训练分词器。") from err
        return cls(hf)

    # ===== 2. 编码与解码 (encode / decode) =====
    @property
    def vocab_size(self) -> int:
        return len(self.id_to_token)

    @property
    def vocab(self) -> dict[str, int]:
        """tokenizer.json 里的词表：字节级写法的词元 → 编号。"""
        return self.hf.get_vocab()

    def encode(self, text: str) -> list[int]:
        """文字 → 编号列表。特殊词元的写法在这里只是普通文字。"""
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_array(self, text: str) -> np.ndarray:
        return np.asarray(self.encode(text), dtype=np.int32)

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """编号 → 文字：先把各词元的字节拼起来再按 UTF-8 解码，所以被拆开的汉字会拼回去；
        结尾不完整的字节解成替换字符 �（流式输出时等下一个词元补全，见 generate.ReplyText）。"""
        out = []
        for i in ids:
            token = self.id_to_token[int(i)]
            if token in CONTROL_TOKENS:
                if not skip_special or token == UNK:
                    out.append(token.encode("utf-8"))
                continue
            out.append(self.token_bytes[int(i)])
        return b"".join(out).decode("utf-8", errors="replace")

    def token_id(self, token: str) -> int:
        """特殊词元的编号，与字符级分词器相同：token_id('<|end|>') → 2。<think> 这类追加的词元在词表末尾。"""
        if token in SPECIAL_TOKENS:
            return SPECIAL_TOKENS.index(token)
        idx = self.hf.token_to_id(token) if token in EXTRA_TOKENS else None
        if idx is None:
            raise StudyGPTError(f"这个模型的词表里没有 {token}：它没有学过思考/工具格式；请用 `studygpt sft --format think|tool` 训练出的模型。")
        return idx

    def add_tokens(self, tokens: Iterable[str]) -> list[str]:
        """把还没有的控制词元 (specials.EXTRA_TOKENS) 追加到词表末尾，返回新加的那些。
        字节级 BPE 能编码任何文字，所以只需要加控制词元；普通字符直接跳过。"""
        from tokenizers import AddedToken
        new = [t for t in dict.fromkeys(tokens) if t in EXTRA_TOKENS and self.hf.token_to_id(t) is None]
        if new:
            self.hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in new])
            self.__init__(self.hf)  # 重建 id_to_token 与 token_bytes
        return new

    def char_lengths(self) -> np.ndarray:
        """每个编号算几个字符：数它的字节里有几个"字符开头"（UTF-8 里不是 10xxxxxx 的字节）。
        一个汉字的 3 个字节不管怎样拆进几个词元，只有开头那个字节算 1，所以整段文字加起来正好是它的字符数。"""
        return np.asarray([sum((b & 0xC0) != 0x80 for b in data) for data in self.token_bytes], dtype=np.int64)

    def vocab_hash(self) -> str:
        """词表与合并规则的指纹：检查点和缓存用它确认分词器没变。"""
        model = json.loads(self.hf.to_str())["model"]
        parts = [sorted(model["vocab"].items(), key=lambda kv: kv[1]), model["merges"]]
        extra = [(t, self.hf.token_to_id(t)) for t in EXTRA_TOKENS if self.hf.token_to_id(t) is not None]
        content = json.dumps(parts + [extra] if extra else parts, ensure_ascii=False)  # 没加控制词元时指纹与以前相同
        return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]

    def describe(self) -> str:
        control = sum(t in CONTROL_TOKENS for t in self.id_to_token)
        return f"字节级 BPE (byte-level BPE)：{control} 个特殊词元 + 256 个字节 + {self.vocab_size - control - 256} 个合并出的词元"

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"
