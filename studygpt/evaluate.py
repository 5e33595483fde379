"""评估 (evaluation)：训练中的验证与 `studygpt eval` 用的是同一份代码。

三个数都只在助手的回答上算（用户的话不是模型要学的）：
- loss：每个词元的平均交叉熵（单位 nat）；
- 困惑度 perplexity = e^loss：模型平均在多少个候选之间犹豫；
- 每字符比特数 bits per character (bpc) = 总损失 / (ln2 · 字符数)：与词表无关，
  所以字符级和以后的子词 (sub-word) 分词器可以公平比较。
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Iterable

import torch
import torch.nn.functional as F

from studygpt.model import DialogueModel
from studygpt.tokenizer import Tokenizer


@torch.no_grad()
def evaluate_loss(model: DialogueModel, batches: Iterable[dict], tokenizer: Tokenizer,
                  autocast_dtype: torch.dtype | None = None, max_batches: int | None = None) -> dict:
    """在若干批次上算 loss / perplexity / bpc。返回 dict(loss, perplexity, bpc, tokens, chars)。"""
    device = model.tok_embeddings.weight.device
    char_len = torch.from_numpy(tokenizer.char_lengths()).to(device)
    was_training = model.training
    model.eval()
    total_nll, tokens, chars = 0.0, 0, 0
    ctx = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        batch = {k: v.to(device) for k, v in batch.items()}
        with ctx:
            hidden = model(batch["input_ids"], attention_mask=batch.get("attention_mask"),
                           doc_ids=batch.get("doc_ids"), positions=batch.get("positions"), return_hidden=True)
        targets = batch["labels"][:, 1:]
        keep = targets != -100
        logits = model.output(hidden[:, :-1][keep]).float()
        total_nll += F.cross_entropy(logits, targets[keep], reduction="sum").item()
        tokens += int(keep.sum())
        chars += int(char_len[targets[keep]].sum())
    model.train(was_training)
    loss = total_nll / max(tokens, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
            "bpc": total_nll / (math.log(2) * max(chars, 1)), "tokens": tokens, "chars": chars}
