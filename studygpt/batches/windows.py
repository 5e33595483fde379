"""训练窗口 (windows)：对话 → 渲染好的 (ids, labels) 窗口 `build_windows`，以及它的词元缓存 (token cache)。

词元缓存 `cached_windows`：把渲染好的训练窗口存成内存映射 (memory-mapped) 的数组，第二次运行直接读。

大语料（小黄鸡约 45 万段对话）每次训练都要把每句话编码、渲染成窗口，要十几秒；这些结果只取决于
语料文件、词表和窗口长度，所以第一次算完就存下来：

    <run>/token_cache/<split>/
        ids.npy       全部窗口的词元首尾相接 (all windows concatenated)：uint16（词表 < 65535 时）或 int32
        labels.npy    与 ids 对齐的标签；uint16 时用 65535 表示 -100（不学习的位置）
        offsets.npy   第 i 个窗口是 ids[offsets[i]:offsets[i+1]]（int64，长度 = 窗口数 + 1）
        meta.json     缓存键 (cache key)：键不同就重建

缓存键 = 格式版本 + 每个语料文件的指纹 + 词表指纹 tokenizer.vocab_hash() + 窗口长度 + 训练/验证的切分方式 + 对话数。
语料文件的指纹 = 路径 + 大小 + 修改时间 (mtime) + 开头 1 MB 与结尾 1 MB 的 SHA-256：
不论语料多大，算指纹都只读 2 MB；编辑器保存、下载、追加内容都会改变大小或修改时间，所以都会让缓存失效。
（只改中间几个字、且大小和修改时间都不变，这种情况实际上不会发生；真要强制重建，删掉 token_cache 文件夹即可。）

缓存放在运行目录 (run dir) 下而不是语料旁边：共享语料的文件夹常常是只读的，删掉一次运行也就删掉了它的缓存；
同一个 --out 再训练一次、或 --resume 续训时都会命中。读出来的 TokenWindows 和 build_windows 的结果一模一样
（第 i 个元素是 (ids int32, labels int32)），PackedBatches 直接可用。
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX, render_windows

CACHE_VERSION = 1          # 渲染格式 (tokenizer/chat_format.py) 改了就加一，旧缓存自动作废
_EDGE_BYTES = 2**20        # 指纹读文件开头、结尾各 1 MB
_U16_IGNORE = 65535        # uint16 里表示 -100 的值（所以 uint16 只用于词表 < 65535）


# ===== 0. 渲染窗口 (render windows) =====
Window = tuple[np.ndarray, np.ndarray]  # (ids int32, labels int32)，长度相同


def build_windows(dialogues: Sequence[Sequence[str]], tokenizer: Tokenizer, max_length: int,
                  stats: Counter | None = None) -> list[Window]:
    """所有对话 → 训练窗口（numpy 数组，省内存）。stats 记录窗口数、被截断的一问一答数。"""
    stats = stats if stats is not None else Counter()
    windows = []
    for turns in dialogues:
        for ids, labels in render_windows(turns, tokenizer, max_length, stats):
            windows.append((np.asarray(ids, dtype=np.int32), np.asarray(labels, dtype=np.int32)))
    return windows


# ===== 1. 缓存键 (cache key) =====
def file_fingerprint(path: str | Path) -> dict:
    """一个语料文件的指纹：路径、大小、修改时间、开头与结尾各 1 MB 的 SHA-256。"""
    p = Path(path).resolve()
    st = p.stat()
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        digest.update(f.read(_EDGE_BYTES))
        if st.st_size > _EDGE_BYTES:
            f.seek(max(st.st_size - _EDGE_BYTES, _EDGE_BYTES))
            digest.update(f.read())
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "edges_sha256": digest.hexdigest()}


def token_dtype(vocab_size: int) -> np.dtype:
    """词表放得下就用 uint16（省一半磁盘与内存），否则 int32。"""
    return np.dtype(np.uint16) if vocab_size < _U16_IGNORE else np.dtype(np.int32)


# ===== 2. 读出来的窗口 (the windows, read back) =====
class TokenWindows(Sequence[Window]):
    """内存映射的窗口序列：第 i 个元素是 (ids int32, labels int32)，与 build_windows 的结果相同。

    lengths：每个窗口的词元数（numpy 数组），打包时不必逐个读窗口。
    """

    def __init__(self, ids: np.ndarray, labels: np.ndarray, offsets: np.ndarray):
        self.ids, self.labels, self.offsets = ids, labels, offsets
        self.lengths = np.diff(offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> Window:
        if not -len(self) <= i < len(self):
            raise IndexError(f"窗口下标 {i} 超出范围（共 {len(self)} 个）")
        a, b = self.offsets[i], self.offsets[i + 1]
        ids = self.ids[a:b].astype(np.int32)
        labels = self.labels[a:b].astype(np.int32)
        if self.labels.dtype == np.uint16:
            labels[labels == _U16_IGNORE] = IGNORE_INDEX
        return ids, labels

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])


def save_windows(folder: str | Path, windows: Sequence[Window], vocab_size: int, key: dict) -> None:
    """把窗口写成 ids/labels/offsets 三个 .npy 与 meta.json。先写进临时文件夹再整体改名 (atomic)，
    所以别的进程（多进程训练）永远看不到写了一半的缓存。"""
    folder = Path(folder)
    dtype = token_dtype(vocab_size)
    lengths = np.fromiter((len(w[0]) for w in windows), dtype=np.int64, count=len(windows))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ids = np.concatenate([w[0] for w in windows]).astype(dtype) if windows else np.zeros(0, dtype)
    labels = np.concatenate([w[1] for w in windows]) if windows else np.zeros(0, np.int32)
    if dtype == np.uint16:
        labels = np.where(labels == IGNORE_INDEX, _U16_IGNORE, labels)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    np.save(tmp / "ids.npy", ids)
    np.save(tmp / "labels.npy", labels.astype(dtype))
    np.save(tmp / "offsets.npy", offsets)
    (tmp / "meta.json").write_text(json.dumps(key, indent=2, ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)  # 旧的（键不同的）缓存
    try:
        os.replace(tmp, folder)
    except OSError:  # 另一个进程刚刚写好了同样的缓存：用它的
        shutil.rmtree(tmp, ignore_errors=True)


def load_windows(folder: str | Path, key: dict) -> TokenWindows | None:
    """缓存存在且键完全相同时，内存映射地打开它；否则返回 None。"""
    folder = Path(folder)
    try:
        if json.loads((folder / "meta.json").read_text(encoding="utf-8")) != key:
            return None
        arrays = [np.load(folder / f"{name}.npy", mmap_mode="r") for name in ("ids", "labels", "offsets")]
    except (OSError, ValueError):
        return None  # 没有缓存，或缓存坏了：重建
    return TokenWindows(*arrays)


# ===== 3. 训练时用的入口 =====
def cached_windows(folder: str | Path, sources: Sequence[str | Path], dialogues: Sequence[Sequence[str]],
                   tokenizer: Tokenizer, max_length: int, split: dict | None = None,
                   log: Callable[[str], None] = print) -> Sequence[Window]:
    """build_windows(dialogues, tokenizer, max_length) 的带缓存版本。

    sources：这些对话来自哪些语料文件（算缓存键用）；有一个不是文件（如内置语料）时不缓存，直接计算。
    split：对话是怎样从文件里切出来的（如验证集比例），写进缓存键。返回 TokenWindows 或 list。
    """
    if not sources or not all(Path(s).is_file() for s in sources):
        return build_windows(dialogues, tokenizer, max_length)
    key = {"version": CACHE_VERSION, "sources": [file_fingerprint(s) for s in sources],
           "vocab_hash": tokenizer.vocab_hash(), "vocab_size": tokenizer.vocab_size, "max_length": max_length,
           "split": split or {}, "dialogues": len(dialogues)}
    cached = load_windows(folder, key)
    if cached is not None:
        log(f"词元缓存 (token cache): 命中 (hit) {folder} — {len(cached):,} 个窗口，{cached.num_tokens:,} 个词元")
        return cached
    windows = build_windows(dialogues, tokenizer, max_length)
    save_windows(folder, windows, tokenizer.vocab_size, key)
    log(f"词元缓存 (token cache): 已写入 (written) {folder} — {len(windows):,} 个窗口；语料或词表不变时下次直接读")
    return load_windows(folder, key) or windows
