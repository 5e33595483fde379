"""考试 (exams)：用贪心解码 (greedy) 考模型，结果可复现。快速上手考三场：

1. 固定的聊天问题（corpus/prompts.json）：回答里出现任意一个期望的关键词就算对；
2. 留出的两位数加法（训练时从没见过的算式）：回答必须与标准答案完全相同；
3. 多轮对话 (conversations)：把上面两种题随机串成 5 轮，像聊天一样把模型自己前几轮的回答放进历史，
   按轮次位置 (turn position) 分别计分——第 5 轮的分数说明"前面聊了 4 轮之后，它还答得对最新的问题吗"。
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from studygpt.corpus.builtin import load_chat_prompts
from studygpt.generation.batch_decode import greedy_batch
from studygpt.generation.tool_use import greedy_replies, thinks_or_calls
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer

CHAT_MAX_LENGTH = 100  # 与 `studygpt chat` 默认的 --max-length 相同：于是历史的词元预算也与聊天时一样


@dataclass(frozen=True)
class Question:
    """一道题。exact=False：回答包含 expect 里任意一项就算对；exact=True：回答必须等于 expect[0]。"""
    text: str
    expect: tuple[str, ...]
    exact: bool = False

    def check(self, reply: str) -> bool:
        if self.exact:
            return reply.strip() == self.expect[0].strip()
        return any(keyword in reply for keyword in self.expect)


@dataclass
class ExamResult:
    """一场考试（或多轮考试里的一个轮次位置）：题目、模型的回答、对错。"""
    questions: list[Question]
    replies: list[str]
    correct: list[bool]

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / max(len(self.correct), 1)

    def score(self) -> str:
        """例如 "100% (20/20)"。"""
        return f"{self.accuracy:.1%} ({sum(self.correct)}/{len(self.correct)})"


def chat_questions() -> list[Question]:
    """corpus/prompts.json 的 20 个固定聊天问题。"""
    return [Question(p["prompt"], tuple(p["expect"])) for p in load_chat_prompts()]


def addition_questions(heldout: Sequence[tuple[str, str]]) -> list[Question]:
    """留出的加法题 [(问题, 标准答案)] → 题目（完全匹配）。"""
    return [Question(q, (a,), exact=True) for q, a in heldout]


def take_exam(model: DialogueModel, tokenizer: Tokenizer, questions: Sequence[Question],
              histories: Sequence[Sequence[str]] | None = None, max_length: int = CHAT_MAX_LENGTH) -> ExamResult:
    """每道题贪心解码一个回答并判分。histories 是每道题之前的轮次 [用户, 助手, ...]，None 表示都从头问。"""
    texts = [q.text for q in questions]
    if histories is None and thinks_or_calls(tokenizer):  # 会打草稿、调用计算器的模型：照样打草稿、调用，只看正文
        replies = [r.content for r in greedy_replies(model, tokenizer, texts, max_length=max(max_length, 120))]
    else:
        replies = greedy_batch(model, tokenizer, texts, max_length=max_length, histories=histories)
    return ExamResult(list(questions), replies, [q.check(r) for q, r in zip(questions, replies)])


def build_conversations(pools: Sequence[Sequence[Question]], count: int = 200, turns: int = 5,
                        seed: int = 0) -> list[list[Question]]:
    """count 段 turns 轮的对话：每一轮先等概率选一个题库 (pool)，再从里面随机抽一道题。"""
    rng = random.Random(seed)
    return [[rng.choice(rng.choice(pools)) for _ in range(turns)] for _ in range(count)]


def conversation_exam(model: DialogueModel, tokenizer: Tokenizer, conversations: Sequence[Sequence[Question]],
                      max_length: int = CHAT_MAX_LENGTH) -> list[ExamResult]:
    """像聊天一样一轮一轮地考：第 k 轮的历史是前 k−1 轮的问题和模型自己的回答。

    出: 每个轮次位置一个 ExamResult（第 1 轮、第 2 轮……），所有对话的同一轮一起成批解码。
    历史放不下时与 `studygpt chat` 一样从最早的一问一答丢起（generate.fit_prompt）。
    """
    histories: list[list[str]] = [[] for _ in conversations]
    results = []
    for turn in range(len(conversations[0])):
        questions = [conv[turn] for conv in conversations]
        result = take_exam(model, tokenizer, questions, histories, max_length)
        for history, question, reply in zip(histories, questions, result.replies):
            history += [question.text, reply]
        results.append(result)
    return results
