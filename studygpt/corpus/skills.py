"""技能集：两位数加法，检验模型会不会“举一反三” (a skill set that tests generalisation).

聊天语料里，模型答对一个问题，可能只是背下了答案。加法不一样：只要留出一部分算式不给模型看
(held out)，再考它这些没见过的算式，就能分清它是“背会了”还是“学会了”。

- 问题有几种问法：`23加58等于多少？`、`23+58=?`、`算一下23加58。`
- 回答永远是同一种格式：`23加58等于81。`
- 留出的是**无序**的数对：{23, 58} 被留出时，23+58 和 58+23 都不进训练集——
  否则模型看过 58+23=81，再答 23+58 就不算真正的“没见过”。
"""
from __future__ import annotations

import random

from studygpt.corpus.read import Dialogue
from studygpt.errors import StudyGPTError

LOW, HIGH = 10, 99  # 两位数 (two-digit numbers), 两端都包含
QUESTION_TEMPLATES = ("{a}加{b}等于多少？", "{a}+{b}=?", "算一下{a}加{b}。")  # 第一个是标准问法 (canonical)


def addition_question(a: int, b: int, template: str = QUESTION_TEMPLATES[0]) -> str:
    """出题 (the question): 默认用标准问法，例如 `23加58等于多少？`。"""
    return template.format(a=a, b=b)


def addition_answer(a: int, b: int) -> str:
    """标准答案 (the expected answer), 例如 `23加58等于81。`。"""
    return f"{a}加{b}等于{a + b}。"


def addition_split(seed: int = 0, heldout_fraction: float = 0.1) -> tuple[list[Dialogue], list[tuple[str, str]]]:
    """把全部两位数加法分成训练集和留出集 (split all 2-digit additions into train and held-out).

    入: seed 决定留出哪些数对、训练题用哪种问法（同一个 seed 结果完全相同）；
        heldout_fraction 是留出的无序数对所占比例，0 < heldout_fraction < 1。
    出: (训练对话, 留出题)。
        训练对话：每个没被留出的有序算式一段 [问题, 回答]，问法随机三选一；
        留出题：[(标准问法的问题, 标准答案)]，留出数对的两种顺序都在里面（a == b 时只有一个）。
    """
    if not 0 < heldout_fraction < 1:
        raise StudyGPTError(f"heldout_fraction={heldout_fraction} 不在 (0, 1) 之间 — 请用例如 0.1")
    rng = random.Random(seed)  # 自己的随机数生成器：不受、也不影响全局 random 的状态
    numbers = range(LOW, HIGH + 1)
    pairs = [(a, b) for a in numbers for b in numbers if a <= b]  # 无序数对 (unordered pairs), 4095 个
    heldout = set(rng.sample(pairs, round(len(pairs) * heldout_fraction)))

    train: list[Dialogue] = []
    test: list[tuple[str, str]] = []
    for a in numbers:
        for b in numbers:
            if (min(a, b), max(a, b)) in heldout:
                test.append((addition_question(a, b), addition_answer(a, b)))
            else:
                template = rng.choice(QUESTION_TEMPLATES)
                train.append([addition_question(a, b, template), addition_answer(a, b)])
    return train, test


def check_addition(reply: str, expected: str) -> bool:
    """回答是否正确 (is the reply right): 去掉首尾空白后与标准答案完全相同。"""
    return reply.strip() == expected.strip()
