"""对话格式 (chat format)：把一段多轮对话变成模型看到的编号序列和要学习的标签。

一段对话渲染成：
    <|user|>你好<|end|><|assistant|>你好！<|end|><|user|>你是谁<|end|><|assistant|>我是StudyGPT。<|end|>

标签 (labels) 与输入一一对齐（Hugging Face 的约定：labels[i] 是词元 ids[i] 本身；
"用前文预测它"的错位在计算损失时再做，见 model/scoring.py 的 `lm_loss`）。
只学习助手 (assistant) 的回答内容和它结尾的 `<|end|>`，其余位置都是 -100（不计损失）：
模型要学会"怎样回答、何时停下"，而不是去模仿用户说话。

助手的回答可以是一个 Reply：先在 <think>…</think> 里写草稿 (reasoning)，或者发出一次工具调用，
拿到工具的结果再接着回答（第 16、17 章）：
    <|assistant|><think>个位7+6+0=13，…</think>457加386等于843。<|end|>
    <|assistant|><tool_call>{"name":"calculator",…}</tool_call><|end|><|tool|>843<|end|><|assistant|>457加386等于843。<|end|>
草稿和工具调用都是助手写的，也要学；工具的结果是程序给的，不学。`parse_reply` 把生成的编号拆回 Reply。

整个项目只有这一个渲染函数：训练、评估、生成、服务都用它，保证格式处处一致。
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence, Union

from studygpt.errors import StudyGPTError
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import (
    ASSISTANT,
    END,
    THINK,
    THINK_END,
    TOOL,
    TOOL_CALL,
    TOOL_CALL_END,
    USER,
)

IGNORE_INDEX = -100  # PyTorch 交叉熵默认忽略的标签 (ignored by F.cross_entropy)
# 生成的回答里，这几个词元之后的文字属于哪一段：草稿 (reasoning)、工具调用 (tool_call) 还是正文 (content)。
# parse_reply 与服务器的流式输出（serve/batcher.py）都按这一张表分段。
SEGMENT_AFTER = {THINK: "reasoning", THINK_END: "content", TOOL_CALL: "tool_call", TOOL_CALL_END: "content"}


@dataclass(frozen=True)
class Reply:
    """助手的一次回答：正文 content，可选的草稿 reasoning（<think> 里），
    可选的一次工具调用 tool_call（JSON 文字）和它的结果 tool_result（由程序填，见 generation/tool_use.py）。"""
    content: str
    reasoning: str = ""
    tool_call: str = ""
    tool_result: str = ""

    def __str__(self) -> str:
        return self.content


Turn = Union[str, Reply]  # 一轮：用户的话是 str；助手的话是 str 或 Reply


def _render_reply(tokenizer: Tokenizer, reply: Reply, finished: bool = True) -> tuple[list[int], list[int]]:
    """助手的 Reply → (ids, labels)。学：草稿、工具调用（连同它后面的 <|end|>）、正文和结尾的 <|end|>；
    不学：角色词元和工具的结果（程序给的）。finished=False 时只渲染到"工具结果之后、正文之前"（生成用的提示）。"""
    tid = tokenizer.token_id
    ids, labels = [tid(ASSISTANT)], [IGNORE_INDEX]

    def learn(part: list[int]) -> None:
        ids.extend(part)
        labels.extend(part)

    if reply.reasoning:
        learn([tid(THINK)] + tokenizer.encode(reply.reasoning) + [tid(THINK_END)])
    if reply.tool_call:
        learn([tid(TOOL_CALL)] + tokenizer.encode(reply.tool_call) + [tid(TOOL_CALL_END), tid(END)])
        given = [tid(TOOL)] + tokenizer.encode(reply.tool_result) + [tid(END), tid(ASSISTANT)]
        ids.extend(given)
        labels.extend([IGNORE_INDEX] * len(given))
    if finished:
        learn(tokenizer.encode(reply.content) + [tid(END)])
    return ids, labels


def _render_turn(tokenizer: Tokenizer, text: Turn, is_assistant: bool) -> tuple[list[int], list[int]]:
    """一句话 → (ids, labels)。用户的话全部不学；助手的话学内容和结尾的 <|end|>。"""
    if is_assistant and isinstance(text, Reply):
        return _render_reply(tokenizer, text)
    role = tokenizer.token_id(ASSISTANT if is_assistant else USER)
    content = tokenizer.encode(str(text))
    ids = [role] + content + [tokenizer.token_id(END)]
    if is_assistant:
        labels = [IGNORE_INDEX] + ids[1:]  # 角色词元是我们给的提示，不需要模型预测
    else:
        labels = [IGNORE_INDEX] * len(ids)
    return ids, labels


def parse_reply(ids: Sequence[int], tokenizer: Tokenizer) -> Reply:
    """生成出的编号（<|assistant|> 之后的部分）→ Reply：渲染的逆运算。

    `<think>…</think>` 里的是草稿，`<tool_call>…</tool_call>` 里的是工具调用，其余（到 <|end|> 为止）是正文。
    没写完的草稿（没有 </think>）也算草稿，正文为空；绝不抛异常：模型写出什么都能拆。
    """
    tid = tokenizer.id_to_token
    parts: dict[str, list[int]] = {"reasoning": [], "tool_call": [], "content": []}
    where = "content"
    for i in ids:
        token = tid[int(i)]
        if token == END:
            break
        if token in SEGMENT_AFTER:
            where = SEGMENT_AFTER[token]
        else:
            parts[where].append(int(i))
    return Reply(**{k: tokenizer.decode(v) for k, v in parts.items()})


def render_conversation(turns: Sequence[Turn], tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """整段对话 → (input_ids, labels)，两者等长。turns 依次是 用户、助手、用户、助手……（助手的可以是 Reply）"""
    ids: list[int] = []
    labels: list[int] = []
    for i, text in enumerate(turns):
        turn_ids, turn_labels = _render_turn(tokenizer, text, is_assistant=i % 2 == 1)
        ids += turn_ids
        labels += turn_labels
    return ids, labels


def render_prompt(history: Sequence[Turn], user_text: str, tokenizer: Tokenizer,
                  pending: Reply | None = None) -> list[int]:
    """生成用的提示 (prompt)：历史轮次 + 这次的用户输入 + `<|assistant|>`，模型从这里接着写回答。

    pending：这次回答已经有的部分（草稿、工具调用和它的结果）；提示渲染到它之后，模型接着写正文。"""
    ids, _ = render_conversation(list(history) + [user_text], tokenizer)
    return ids + (reply_prefix(pending, tokenizer) if pending is not None else [tokenizer.token_id(ASSISTANT)])


def reply_prefix(pending: Reply, tokenizer: Tokenizer) -> list[int]:
    """回答已经有的部分：`<|assistant|>` + 草稿 + 工具调用 + `<|tool|>结果<|end|><|assistant|>`，模型接着写正文。"""
    return _render_reply(tokenizer, pending, finished=False)[0]


def _truncate_exchange(user: tuple[list[int], list[int]], reply: tuple[list[int], list[int]],
                       max_length: int) -> tuple[list[int], list[int]]:
    """一问一答本身就比 max_length 长：截断而不是丢弃。

    问题最多占一半长度，保留问题的结尾（离回答最近的部分，连同它的 <|end|>）和开头的 <|user|>；
    回答保留开头，超出部分截掉（被截断的回答没有结尾的 <|end|>，模型不会学到"在半句话处停下"）。
    """
    u_ids, u_labels = user
    r_ids, r_labels = reply
    u_budget = min(len(u_ids), max_length // 2)
    if u_budget < len(u_ids):
        cut = len(u_ids) - (u_budget - 1)  # 第一个位置留给 <|user|>，其余留结尾（不写 [-keep:]：keep=0 时那是整个列表）
        u_ids, u_labels = u_ids[:1] + u_ids[cut:], u_labels[:1] + u_labels[cut:]
    r_budget = max_length - len(u_ids)
    return u_ids + r_ids[:r_budget], u_labels + r_labels[:r_budget]


def render_windows(turns: Sequence[Turn], tokenizer: Tokenizer, max_length: int = 256,
                   stats: Counter | None = None) -> list[tuple[list[int], list[int]]]:
    """把一段（可能很长的）对话切成若干窗口，每个窗口 ≤ max_length 个词元。

    窗口只包含完整的"一问一答" (exchange)，所以没有窗口从半句话开始；
    单个一问一答就超长时截断它（见 `_truncate_exchange`），并在 stats["truncated_exchanges"] 里计数，
    绝不悄悄丢掉；最后一句没有回答的用户话没法学，记进 stats["unanswered_turns"]。stats 还会记录 windows（窗口数）。
    """
    stats = stats if stats is not None else Counter()
    if len(turns) % 2:
        stats["unanswered_turns"] += 1
    windows: list[tuple[list[int], list[int]]] = []
    cur_ids: list[int] = []
    cur_labels: list[int] = []
    for k in range(0, len(turns) - 1, 2):
        user = _render_turn(tokenizer, turns[k], is_assistant=False)
        reply = _render_turn(tokenizer, turns[k + 1], is_assistant=True)
        ex_ids, ex_labels = user[0] + reply[0], user[1] + reply[1]
        if len(ex_ids) > max_length:
            ex_ids, ex_labels = _truncate_exchange(user, reply, max_length)
            stats["truncated_exchanges"] += 1
        if cur_ids and len(cur_ids) + len(ex_ids) > max_length:
            windows.append((cur_ids, cur_labels))  # 当前窗口放不下这一问一答：另起一个窗口
            cur_ids, cur_labels = [], []
        cur_ids, cur_labels = cur_ids + ex_ids, cur_labels + ex_labels
    if cur_ids:
        windows.append((cur_ids, cur_labels))
    stats["windows"] += len(windows)
    return windows


def show_mask(ids: Sequence[int], labels: Sequence[int], tokenizer: Tokenizer, color: bool = False) -> str:
    """把"哪些词元被学习"画出来。纯文本时学习的词元写成 [字]；终端里用绿色。"""
    out = []
    for i, lab in zip(ids, labels):
        token = tokenizer.id_to_token[i]
        token = {"\n": "\\n", "\t": "\\t"}.get(token, token)
        if lab == IGNORE_INDEX:
            out.append(token)
        else:
            out.append(f"\033[1;32m{token}\033[0m" if color else f"[{token}]")
    return "".join(out)


def fit_prompt(tokenizer: Tokenizer, history: Sequence[Turn], user_text: str, budget: int) -> list[int]:
    """在 budget 个词元内放下尽量多的上下文：历史从最早的一问一答开始丢；
    只剩这一句还太长时，保留它的结尾（离回答最近的部分）。"""
    history = list(history)
    if len(history) % 2:
        raise StudyGPTError("history 必须是成对的 [用户, 助手, 用户, 助手, ...]，长度应为偶数。")
    ids = render_prompt([], user_text, tokenizer)
    if len(ids) > budget:
        keep = max(budget - 3, 1)  # 3 = <|user|> <|end|> <|assistant|>
        return render_prompt([], user_text[-keep:], tokenizer)
    # 从最近的一问一答往前加，直到放不下：每轮只渲染一次。（每次丢一轮再整段重渲染是 O(轮数²)，
    # 一个带一万条消息的请求就能让服务器卡住几分钟——滥用测试找到的。）
    start, used = len(history), len(ids)
    while start >= 2:
        exchange = len(render_conversation(history[start - 2:start], tokenizer)[0])
        if used + exchange > budget:
            break
        start, used = start - 2, used + exchange
    return render_prompt(history[start:], user_text, tokenizer)
