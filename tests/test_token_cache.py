"""词元缓存：读回来的窗口必须和 build_windows 一模一样；语料或词表一变，缓存就作废重建。"""
import os

import numpy as np

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import (
    TokenWindows,
    build_windows,
    cached_windows,
    load_windows,
    save_windows,
)
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import DIALOGUES


def write_conv(path, dialogues):
    path.write_text("".join("E\n" + "".join(f"M {t}\n" for t in d) for d in dialogues), encoding="utf-8")
    return path


def same_windows(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
                                    and x[0].dtype == y[0].dtype == np.int32 for x, y in zip(a, b))


def cached(tmp_path, corpus, tokenizer, messages, dialogues=DIALOGUES):
    return cached_windows(tmp_path / "cache", [corpus], dialogues, tokenizer, 24, log=messages.append)


def test_round_trip_equals_build_windows(tmp_path, tokenizer):
    corpus = write_conv(tmp_path / "a.conv", DIALOGUES)
    expected = build_windows(DIALOGUES, tokenizer, 24)  # 24：有的对话要切成几个窗口，有的一问一答要截断
    messages = []
    first = cached(tmp_path, corpus, tokenizer, messages)
    second = cached(tmp_path, corpus, tokenizer, messages)
    assert "写入" in messages[0] and "命中" in messages[1]
    assert isinstance(second, TokenWindows) and same_windows(first, expected) and same_windows(second, expected)
    assert second.ids.dtype == np.uint16  # 小词表用 uint16
    assert list(second.lengths) == [len(w[0]) for w in expected]


def test_int32_storage_for_large_vocab(tmp_path, tokenizer):
    windows = build_windows(DIALOGUES, tokenizer, 24)
    save_windows(tmp_path / "big", windows, vocab_size=70_000, key={"k": 1})
    back = load_windows(tmp_path / "big", {"k": 1})
    assert back.ids.dtype == np.int32 and same_windows(back, windows)
    assert load_windows(tmp_path / "big", {"k": 2}) is None  # 键不同：不用


def test_corpus_change_invalidates(tmp_path, tokenizer):
    corpus = write_conv(tmp_path / "a.conv", DIALOGUES)
    messages = []
    cached(tmp_path, corpus, tokenizer, messages)
    before = corpus.stat()
    changed = [["你好", "你好！很高兴见到您。"]] + DIALOGUES[1:]  # 换一个字：字节数不变
    write_conv(corpus, changed)
    os.utime(corpus, ns=(before.st_atime_ns, before.st_mtime_ns))  # 连修改时间都改回去：只剩内容指纹能发现
    assert corpus.stat().st_size == before.st_size
    again = cached(tmp_path, corpus, tokenizer, messages, changed)
    assert "写入" in messages[-1] and same_windows(again, build_windows(changed, tokenizer, 24))


def test_vocab_change_invalidates(tmp_path, tokenizer):
    corpus = write_conv(tmp_path / "a.conv", DIALOGUES)
    messages = []
    cached(tmp_path, corpus, tokenizer, messages)
    other = Tokenizer().build_vocab(["你好世界"] + [t for d in DIALOGUES for t in d])  # 词元顺序不同
    assert other.vocab_hash() != tokenizer.vocab_hash()
    again = cached(tmp_path, corpus, other, messages)
    assert "写入" in messages[-1] and same_windows(again, build_windows(DIALOGUES, other, 24))


def test_builtin_corpus_is_not_cached(tmp_path, tokenizer):
    out = cached_windows(tmp_path / "cache", ["<builtin>"], DIALOGUES, tokenizer, 24, log=print)
    assert isinstance(out, list) and not (tmp_path / "cache").exists()


def test_packed_batches_from_cache_equal_from_list(tmp_path, tokenizer):
    corpus = write_conv(tmp_path / "a.conv", DIALOGUES * 5)
    windows = build_windows(DIALOGUES * 5, tokenizer, 24)
    from_cache = cached(tmp_path, corpus, tokenizer, [], DIALOGUES * 5)
    a = list(PackedBatches(windows, 2, 24, pad_id=3, seed=1))
    b = list(PackedBatches(from_cache, 2, 24, pad_id=3, seed=1))
    assert len(a) == len(b) > 0
    assert all(all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b))
