"""看看里面 (look inside) 之一：文字 → 词元、编号、<unk>；对话时标出哪些词元参与损失（损失掩码 loss mask）。

`studygpt inspect tokens`（别名 `studygpt tokenize`）。特殊词元和空白字符写成看得见的短写法 (show_token)。
"""
from __future__ import annotations

from typing import Sequence

from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX, render_conversation, show_mask
from studygpt.tokenizer.specials import UNK

# 特殊词元在表格和图上的短写法；空白字符写成看得见的符号
SHORT = {"<|user|>": "<user>", "<|assistant|>": "<asst>", "<|end|>": "<end>", "\n": "\\n", "\t": "\\t", " ": "␠"}


def show_token(token: str) -> str:
    return SHORT.get(token, token)


# ===== 1. 词元与损失掩码 (tokens and the loss mask) =====
def inspect_tokens(texts: Sequence[str], tokenizer: Tokenizer, color: bool = False, with_mask: bool = True) -> str:
    """一段文字 → 词元、编号、<unk> 数；多段文字当作对话（用户、助手交替），再标出哪些词元被学习。

    color=True（终端里）学习的词元是绿色，否则写成 [字]（见 chat_format.show_mask）；
    with_mask=False 时不画掩码那两行。返回要打印的文字。
    """
    unk_id = tokenizer.token_id(UNK)
    if len(texts) == 1:
        ids = tokenizer.encode(texts[0])
        return "\n".join([
            "词元 (tokens): " + " ".join(repr(tokenizer.id_to_token[i]) for i in ids),
            f"编号 (ids):    {ids}",
            f"共 {len(ids)} 个词元（{len(texts[0])} 个字符，平均每个词元 {len(texts[0]) / max(len(ids), 1):.2f} 个字符），"
            f"其中 <unk> {ids.count(unk_id)} 个"])
    turns = list(texts) if len(texts) % 2 == 0 else list(texts) + [""]  # 最后一句没有回答时补一个空回答
    ids, labels = render_conversation(turns, tokenizer)
    learned = sum(label != IGNORE_INDEX for label in labels)
    mask = ["学习的词元为绿色:" if color else "学习的词元用 [ ] 标出 (learned tokens in brackets):",
            show_mask(ids, labels, tokenizer, color=color)] if with_mask else []
    return "\n".join([f"编号 (ids): {ids}"] + mask +
                     [f"共 {len(ids)} 个词元，其中 {learned} 个参与损失 (learned)，<unk> {ids.count(unk_id)} 个"])


