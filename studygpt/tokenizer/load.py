"""按文件选分词器 (pick a tokenizer by its file)：vocab.txt → 字符级，tokenizer.json → 字节级 BPE。"""
from __future__ import annotations

from pathlib import Path

from studygpt.errors import StudyGPTError
from studygpt.tokenizer.char import Tokenizer


def load_tokenizer(path: str | Path):
    """读一个分词器：vocab.txt → 字符级 Tokenizer，tokenizer.json → BPETokenizer；
    给目录（检查点或 `studygpt tokenizer train --out` 的目录）时看里面有哪一个。"""
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in ("tokenizer.json", Tokenizer.file_name) if (path / name).is_file()]
        if not found:
            raise StudyGPTError(f"{path}: 里面既没有 vocab.txt 也没有 tokenizer.json；请给出分词器目录或检查点。")
        path = found[0]
    if path.name.endswith(".json"):
        from studygpt.tokenizer.bpe import (
            BPETokenizer,  # 只在用到时才加载 tokenizers 库
        )
        return BPETokenizer.load(path)
    return Tokenizer().load_vocab(path)
