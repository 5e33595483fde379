"""把对话变成训练批次 (batches)：渲染好的窗口 (build_windows) → 打包批次 PackedBatches。

把每段对话各自填充 (pad) 到同样长，真实语料上大部分计算会花在填充上。PackedBatches 把几段对话首尾相接
"打包"进同一行 (packing)，几乎没有填充。每个词元带上它属于第几段对话 (doc_ids) 和在该段里的位置 (positions)，
模型据此让注意力只在同一段对话里进行，位置编码也从每段的 0 重新开始，所以打包不会串话。
"""
from __future__ import annotations

import math
import random
from typing import Iterator, Sequence

import numpy as np
import torch

from studygpt.batches.windows import Window
from studygpt.errors import StudyGPTError
from studygpt.tokenizer.chat_format import IGNORE_INDEX


def pack_rows(lengths: Sequence[int], seq_len: int, pool: int = 16) -> list[list[int]]:
    """把长度为 lengths 的窗口装进若干行，每行总长 ≤ seq_len（装箱问题 bin packing 的简单近似）。

    按给定顺序逐个放：放进"剩余空间最小但放得下"的那个未满行 (best fit)；
    未满的行最多保留 pool 个，超过时把最满的一行封箱。返回每行包含的窗口下标。
    """
    rows: list[list[int]] = []
    used: list[int] = []             # 每个未满行的已用长度
    members: list[list[int]] = []    # 每个未满行里的窗口下标
    for i, n in enumerate(lengths.tolist() if isinstance(lengths, np.ndarray) else lengths):
        best, best_used, limit = -1, -1, seq_len - n
        for j, u in enumerate(used):  # 45 万个窗口 × 16 行：这个循环是热点，所以只比较整数
            if best_used < u <= limit:
                best, best_used = j, u
        if best < 0:
            used.append(n)
            members.append([i])
        else:
            used[best] += n
            members[best].append(i)
        if len(used) > pool:
            fullest = used.index(max(used))
            used.pop(fullest)
            rows.append(members.pop(fullest))
    rows.extend(members)
    return rows


class PackedBatches:
    """可复现的打包批次：同样的 (seed, epoch) 总是给出同样的批次，所以断点续训能精确接上。

    每个批次 batch_size 行 × seq_len 列。batch_size 是全局批大小 (global batch)：多进程数据并行时，
    第 b 个批次的 batch_size 行被平均分给 world_size 个进程，本进程 (rank) 取自己那一份。
    所以第 b 步用到哪些数据与进程数无关：2 个进程训练的结果等于 1 个进程用同样的全局批大小训练，
    在 N 个进程上保存的检查点也能在 M 个进程上精确续训。
    """

    def __init__(self, windows: Sequence[Window], batch_size: int, seq_len: int, pad_id: int,
                 shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = True):
        # 每个窗口的长度只算一次（token_cache.TokenWindows 直接带着 lengths，不必逐个读窗口）
        lengths = windows.lengths if hasattr(windows, "lengths") else [len(w[0]) for w in windows]
        self.lengths = np.asarray(lengths, dtype=np.int64)
        too_long = int((self.lengths > seq_len).sum())
        if too_long:
            raise ValueError(f"{too_long} 个窗口比 seq_len={seq_len} 长；渲染窗口时的 max_length 不能大于 seq_len。")
        if batch_size % world_size:
            raise StudyGPTError(f"全局批大小 batch_size={batch_size} 不能被进程数 {world_size} 整除；"
                                f"请把 --batch-size 设为 {world_size} 的倍数。")
        self.windows, self.batch_size, self.seq_len, self.pad_id = windows, batch_size, seq_len, pad_id
        self.shuffle, self.seed, self.rank, self.world_size = shuffle, seed, rank, world_size
        self.drop_last = drop_last  # 验证时设为 False：最后一个不满的批次也要算
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rows(self) -> list[list[int]]:
        if self._cache is None or self._cache[0] != self.epoch:
            order = list(range(len(self.windows)))
            if self.shuffle:
                random.Random(self.seed * 100_003 + self.epoch).shuffle(order)  # 每个 epoch 一个新顺序，但可复现
            rows = pack_rows(self.lengths[order], self.seq_len)
            rows = [[order[i] for i in row] for row in rows]
            if self.shuffle:  # 封箱顺序偏向先封满的行；再打乱一次，避免批次按长度聚集
                random.Random(self.seed * 100_003 + self.epoch + 1).shuffle(rows)
            self._cache = (self.epoch, rows)
        return self._cache[1]

    def num_rows(self) -> int:
        """本 epoch 打包出的行数：一行可装好几个窗口，所以行数 ≤ 窗口数；drop_last 时凑不满 batch_size 行就没有批次。"""
        return len(self._rows())

    def __len__(self) -> int:
        rows = self.num_rows()
        return rows // self.batch_size if self.drop_last else math.ceil(rows / self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[dict]:
        """从本 epoch 的第 start 个批次开始（断点续训用）。"""
        rows = self._rows()
        share = self.batch_size // self.world_size  # 每个进程分到的行数
        for b in range(start, len(self)):
            lo = b * self.batch_size + self.rank * share
            chunk = rows[lo:lo + share]
            if chunk:  # 验证时最后一个不满的批次里，有的进程可能分不到
                yield self._make_batch(chunk)

    def _make_batch(self, rows: list[list[int]]) -> dict:
        shape = (len(rows), self.seq_len)
        ids = np.full(shape, self.pad_id, dtype=np.int64)
        labels = np.full(shape, IGNORE_INDEX, dtype=np.int64)
        doc_ids = np.full(shape, -1, dtype=np.int64)  # -1：填充，自成一段，真实词元看不到它
        positions = np.zeros(shape, dtype=np.int64)
        for r, members in enumerate(rows):
            col = 0
            for d, w in enumerate(members):
                w_ids, w_labels = self.windows[w]
                n = len(w_ids)
                ids[r, col:col + n], labels[r, col:col + n] = w_ids, w_labels
                doc_ids[r, col:col + n] = d
                positions[r, col:col + n] = np.arange(n)  # 每段对话的位置从 0 开始
                col += n
        return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels),
                "doc_ids": torch.from_numpy(doc_ids), "positions": torch.from_numpy(positions)}

    def tokens_in_epoch(self) -> int:
        """本 epoch 真正训练的词元数（不含填充；drop_last 丢掉的行不算；多进程时是所有进程合计）。"""
        rows = self._rows()[:len(self) * self.batch_size]
        return int(sum(int(self.lengths[row].sum()) for row in rows))

    def padding_fraction(self) -> float:
        """本 epoch 所有批次里填充词元的比例。"""
        rows = self._rows()
        used = int(self.lengths.sum())  # 每个窗口都恰好装进一行
        return 1 - used / max(len(rows) * self.seq_len, 1)
