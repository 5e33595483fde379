"""原接口的兼容层 (compatibility layer)：README 里"Python 接口"那段代码用到的类和函数都在这里。

    ConvDataset       读 .conv 文件并建词表（内部用 data.read_dialogues 与 Tokenizer.build_vocab）
    DialogueDataset   每个窗口一个样本、填充到 max_length，给 torch 的 DataLoader 用
    load_checkpoint   返回 (model, optimizer, scheduler, epoch, config) 五元组

核心模块不导入这里：新代码用 corpus/read.py 的 read_dialogues、batches/packing.py 的 PackedBatches（几乎不填充）
与 model/checkpoint.py 的 load_model。`from studygpt import *` 拿得到这些名字。
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset

from studygpt.batches.windows import Window, build_windows
from studygpt.corpus.read import Dialogue, ReadReport, read_dialogues
from studygpt.model.checkpoint import load_model, load_trainer_state, resolve_checkpoint
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX
from studygpt.tokenizer.specials import PAD
from studygpt.training.optim import TrainConfig, optimizer_and_schedule


# ===== 1. 读语料 =====
class ConvDataset:
    """ConvDataset("x.conv"); ds.process_file(); len(ds); ds[0]; tok = ds.build_vocab()。

    没调 process_file 就用 len / 迭代 / 下标 / build_vocab 时会先自动读一遍文件。
    """

    def __init__(self, path: str | Path, fmt: str | None = None):
        self.path = path
        self.fmt = fmt
        self.dialogues: list[Dialogue] = []
        self.report: ReadReport | None = None

    def process_file(self) -> list[Dialogue]:
        """读文件 (read the file): 设置 .dialogues 和 .report，不打印；出: 对话列表。"""
        self.dialogues, self.report = read_dialogues(self.path, self.fmt)
        return self.dialogues

    def _ensure_processed(self) -> None:
        if self.report is None:
            self.process_file()

    def build_vocab(self, max_vocab_size: int = 10000, vocab_file: str | Path | None = None,
                    min_count: int = 1) -> Tokenizer:
        """用全部句子建字符级词表 (build the char vocab); 给了 vocab_file 就顺便存盘。出: Tokenizer。"""
        self._ensure_processed()
        texts = [text for dialogue in self.dialogues for text in dialogue]
        tok = Tokenizer().build_vocab(texts, max_vocab_size=max_vocab_size, min_count=min_count)
        if vocab_file:
            tok.save_vocab(vocab_file)
        return tok

    def __len__(self) -> int:
        self._ensure_processed()
        return len(self.dialogues)

    def __iter__(self) -> Iterator[Dialogue]:
        self._ensure_processed()
        return iter(self.dialogues)

    def __getitem__(self, index):
        self._ensure_processed()
        return self.dialogues[index]


# ===== 2. 一个窗口一个样本的数据集 =====
class DialogueDataset(Dataset):
    """DialogueDataset(conv_dataset, tokenizer, max_length=256)：每个样本是一个渲染好的窗口。

    conv_dataset 可以是 ConvDataset（没读过文件会先读），也可以直接是对话列表。
    每个样本是 dict(input_ids, labels, attention_mask)，都填充到 max_length，
    所以 PyTorch 默认的 collate 也能用；用 `collate_fn=dataset.collate_fn` 则只填充到批内最长。
    """

    def __init__(self, conv_dataset, tokenizer: Tokenizer, max_length: int = 256):
        dialogues = conv_dataset
        if hasattr(conv_dataset, "process_file"):  # ConvDataset（没读过文件会先读）
            if not conv_dataset.dialogues:
                conv_dataset.process_file()
            dialogues = conv_dataset.dialogues
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_id = tokenizer.token_id(PAD)
        self.stats: Counter = Counter()
        self.windows = build_windows(dialogues, tokenizer, max_length, self.stats)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict:
        return pad_batch([self.windows[i]], self.pad_id, self.max_length, squeeze=True)

    def collate_fn(self, items: list[dict]) -> dict:
        """把若干样本拼成一批，只填充到批内最长的那一行。"""
        width = max(int(item["attention_mask"].sum()) for item in items)
        return {k: torch.stack([item[k][:width] for item in items]) for k in items[0]}

    def padding_fraction(self, batch_size: int) -> float:
        """按顺序成批、填充到批内最长时，填充占的比例。"""
        lengths = [len(w[0]) for w in self.windows]
        padded = sum(max(lengths[i:i + batch_size]) * len(lengths[i:i + batch_size])
                     for i in range(0, len(lengths), batch_size))
        return 1 - sum(lengths) / max(padded, 1)


def pad_batch(windows: Sequence[Window], pad_id: int, width: int, squeeze: bool = False) -> dict:
    """右侧填充 (right padding) 到 width：填充位置的标签为 -100，attention_mask 为 0。"""
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(windows), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for r, (w_ids, w_labels) in enumerate(windows):
        n = len(w_ids)
        ids[r, :n], labels[r, :n], mask[r, :n] = torch.from_numpy(w_ids), torch.from_numpy(w_labels), 1
    batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    return {k: v[0] for k, v in batch.items()} if squeeze else batch


# ===== 3. 五元组的检查点加载 =====
def load_checkpoint(path: str | Path, device="cpu"):
    """返回 (model（训练模式）, optimizer, scheduler, epoch, config)。

    不反序列化任何 Python 对象：优化器与调度器按保存的训练配置重新创建，再装入 trainer_state.pt 里的状态。
    检查点没有训练状态时（例如 best/），优化器是新建的，epoch 取 config.json 里记下的。
    config 是训练配置（dict），另外放入 "tokenizer" 键，方便拿到词表。path 可以写成 data/model_epoch_2.pt。
    """
    model, tokenizer, meta = load_model(path, device)
    model.train()
    config = TrainConfig.from_dict(meta.get("train", {}))
    optimizer, scheduler = optimizer_and_schedule(model, config, None)
    epoch = meta.get("epoch", 0)
    ckpt = resolve_checkpoint(path)
    if (ckpt / "trainer_state.pt").is_file():
        state = load_trainer_state(ckpt)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        epoch = state["epoch"]
    return model, optimizer, scheduler, epoch, {**config.to_dict(), "tokenizer": tokenizer}
