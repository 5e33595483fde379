"""多轮链 (chains)：把互不相关的对话首尾相接成一段多轮对话，教模型"只答最新的问题"。

聊天时，模型看到的是"前几轮 + 这句问题"。如果训练时问题几乎总在对话开头出现，
模型就没学过"前面说了别的事，现在只答这一句"，前文一长就会答乱（比如把上一题的数字抄进这一题）。
所以训练前把单轮问答（以及真实的多轮对话，整段不拆）随机串成几轮一段的链：

    <|user|>你好<|end|><|assistant|>你好！…<|end|><|user|>23加58等于多少？<|end|><|assistant|>23加58等于81。<|end|>

每个问答都还是原来的样子，只是换到了对话中间的不同位置；总的训练词元数不变。
"""
from __future__ import annotations

import random
from typing import Sequence

from studygpt.corpus.read import Dialogue
from studygpt.errors import StudyGPTError


def dialogue_tokens(dialogue: Sequence[str]) -> int:
    """一段对话渲染后的词元数：字符级分词器每个字一个词元，每句另加角色词元和 <|end|> 两个。"""
    return sum(len(text) + 2 for text in dialogue)


def chain_dialogues(dialogues: Sequence[Dialogue], max_tokens: int, max_parts: int = 5,
                    seed: int = 0) -> list[Dialogue]:
    """把对话随机串成多轮链 (chain dialogues)。

    入: dialogues：对话列表（单轮问答或真实的多轮对话，后者整段放进一条链，不拆开）；
        max_tokens：一条链最多多少个词元（用训练窗口长度 seq_len，这样一条链正好是一个窗口）；
        max_parts：一条链最多串几段，每条链的目标段数在 1..max_parts 里均匀地随机选；
        seed：打乱顺序与选段数用的随机种子（同一个 seed 结果完全相同）。
    出: 新的对话列表，每段对话恰好出现在一条链里一次；本身超过 max_tokens 的对话单独成链
        （训练时照常按整轮切成窗口）。
    """
    if max_tokens < 1 or max_parts < 1:
        raise StudyGPTError(f"max_tokens={max_tokens}、max_parts={max_parts} 都必须 ≥ 1。")
    rng = random.Random(seed)  # 自己的随机数生成器：不受、也不影响全局 random 的状态
    order = list(range(len(dialogues)))
    rng.shuffle(order)
    chains: list[Dialogue] = []
    chain: Dialogue = []
    target = rng.randint(1, max_parts)
    parts = 0
    for i in order:
        dialogue = list(dialogues[i])
        if chain and (parts >= target or dialogue_tokens(chain) + dialogue_tokens(dialogue) > max_tokens):
            chains.append(chain)  # 这条链够长了：封好，另起一条
            chain, parts, target = [], 0, rng.randint(1, max_parts)
        chain += dialogue
        parts += 1
    if chain:
        chains.append(chain)
    return chains
