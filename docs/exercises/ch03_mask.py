"""第 3 章练习：对话格式与损失掩码 (chat format and loss mask)。检查：pytest docs/exercises -k ch03

一段对话渲染成  <|user|>问<|end|><|assistant|>答<|end|><|user|>……
标签 (labels) 与输入等长：只有助手回答的内容和它结尾的 <|end|> 有标签（= 词元自己的编号），其余是 -100（不计损失）。
对照：studygpt/tokenizer/chat_format.py 的 render_conversation（请先自己写，再去看）。
"""
from typing import Sequence

from studygpt.tokenizer.char import Tokenizer

IGNORE = -100


def render(turns: Sequence[str], tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """练习 3.1：对话 → (ids, labels)。turns 依次是 用户、助手、用户、助手……

    用 tokenizer.encode(文字) 得到字的编号，tokenizer.token_id("<|user|>") 等得到特殊词元的编号。
    """
    raise NotImplementedError("练习 3.1：渲染对话并给出标签 (render with labels)")


def learned_tokens(ids: Sequence[int], labels: Sequence[int], tokenizer: Tokenizer) -> list[str]:
    """练习 3.2：哪些词元参与损失？返回这些词元（tokenizer.id_to_token[编号]），按出现顺序。"""
    raise NotImplementedError("练习 3.2：列出被学习的词元 (learned tokens)")


def training_pairs(ids: Sequence[int], labels: Sequence[int]) -> list[tuple[int, int]]:
    """练习 3.3：模型在位置 t 看到 ids[t]，要预测的是 labels[t + 1]（错开一位 shift）。

    返回所有 (位置 t 的输入编号, 要预测的编号) 对，跳过要预测的标签是 -100 的位置。
    """
    raise NotImplementedError("练习 3.3：错开一位得到 (输入, 目标) 对 (shift by one)")
