"""第 3 章参考答案：对话格式与损失掩码。"""
from typing import Sequence

from studygpt.tokenizer.char import Tokenizer

IGNORE = -100


def render(turns: Sequence[str], tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    labels: list[int] = []
    for i, text in enumerate(turns):
        is_assistant = i % 2 == 1
        role = tokenizer.token_id("<|assistant|>" if is_assistant else "<|user|>")
        turn = [role] + tokenizer.encode(text) + [tokenizer.token_id("<|end|>")]
        ids += turn
        # 助手：角色词元是我们给的提示，不学；内容和 <|end|> 要学。用户的话全部不学
        labels += ([IGNORE] + turn[1:]) if is_assistant else [IGNORE] * len(turn)
    return ids, labels


def learned_tokens(ids: Sequence[int], labels: Sequence[int], tokenizer: Tokenizer) -> list[str]:
    return [tokenizer.id_to_token[i] for i, label in zip(ids, labels) if label != IGNORE]


def training_pairs(ids: Sequence[int], labels: Sequence[int]) -> list[tuple[int, int]]:
    return [(ids[t], labels[t + 1]) for t in range(len(ids) - 1) if labels[t + 1] != IGNORE]
