"""验证 (validation)：训练中途在留出的数据上算损失。`studygpt eval` 的成绩单也用这里的公式。

- loss：每个词元的平均交叉熵（单位 nat）；困惑度 perplexity = e^loss；
- 每字符比特数 bits per character (bpc) = 总损失 / (ln2 · 字符数)：与词表无关，字符级与 BPE 可以公平比较。
"""
from __future__ import annotations

import itertools
import math
from contextlib import nullcontext
from typing import Iterable

import torch

from studygpt.model.scoring import eval_mode, lm_loss
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX


def loss_summary(total_nll: float, tokens: int, chars: int) -> dict:
    """总损失 (nat) + 标签词元数 + 它们的字符数 → dict(loss, perplexity, bpc, tokens, chars)。

    困惑度与每字符比特数只在这里算：训练时的验证（多进程时先把三个数加总）与 `studygpt eval` 都调用它。
    """
    loss = total_nll / max(tokens, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),  # min：刚初始化时 e^loss 不会溢出
            "bpc": total_nll / (math.log(2) * max(chars, 1)), "tokens": int(tokens), "chars": int(chars)}


@torch.no_grad()
def evaluate_loss(model: DialogueModel, batches: Iterable[dict], tokenizer: Tokenizer,
                  autocast_dtype: torch.dtype | None = None, max_batches: int | None = None) -> dict:
    """在若干批次上算 loss / perplexity / bpc（损失用 model.lm_loss 的总和）。返回 loss_summary 的 dict。"""
    device = model.tok_embeddings.weight.device
    char_len = torch.from_numpy(tokenizer.char_lengths()).to(device)
    total_nll, tokens, chars = 0.0, 0, 0
    ctx = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
    with eval_mode(model):
        for batch in itertools.islice(batches, max_batches):
            batch = {k: v.to(device) for k, v in batch.items()}
            with ctx:
                nll, n = lm_loss(model, batch, reduction="sum")
            total_nll += nll.item()
            tokens += n
            targets = batch["labels"][:, 1:]  # 被预测的词元（与 lm_loss 同样错开一位）：数它们有多少个字符
            chars += int(char_len[targets[targets != IGNORE_INDEX]].sum())
    return loss_summary(total_nll, tokens, chars)
