"""OpenAI 的消息 (messages) → 本项目的对话轮次 (turns)；工具调用在两种写法之间的转换。

OpenAI 的函数调用流程 (function calling) 在消息列表里是四条消息：
    user       457加386等于多少？
    assistant  tool_calls=[{"id": "call_1", "type": "function",
                            "function": {"name": "calculator", "arguments": "{\"expression\": \"457+386\"}"}}]
    tool       tool_call_id="call_1", content="843"            ← 客户端执行工具，把结果发回来
    assistant  457加386等于843。
本项目的模型把助手一侧的三条写成一轮 Reply（见 tokenizer/chat_format.py）：
    <|assistant|><tool_call>{"name":"calculator",…}</tool_call><|end|><|tool|>843<|end|><|assistant|>457加386等于843。<|end|>
所以 to_conversation 把 assistant(tool_calls) + tool + assistant(正文) 合成一个 Reply。
消息列表停在 tool 消息上，说明客户端刚执行完工具、等模型接着写正文：这一轮还没写完，放在 Conversation.pending。

草稿 (reasoning_content) 只留在还没写完的这一轮里；写完了的轮次去掉草稿（DeepSeek 也这样做），省上下文。
一次回答最多调用一次工具（Reply 只有一个 tool_call 的位置），多个调用是一句 400。
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Sequence

from studygpt.generation.tool_use import format_call, parse_call
from studygpt.serve.schemas import IGNORED_ROLES, ApiError, Message, ToolCall
from studygpt.tokenizer.chat_format import Reply, Turn


@dataclass
class Conversation:
    """模型要看的对话：history 是 [用户, 助手, …]（助手的可以是 Reply），user_text 是最后一句用户的话，
    pending 是这次回答已经有的部分（工具调用和它的结果；None 表示模型从头写回答）。"""
    history: list[Turn]
    user_text: str
    pending: Reply | None = None


# ===== 1. 一次工具调用：模型的写法 ↔ OpenAI 的写法 =====
def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass
class ToolUse:
    """模型写出的一次工具调用，OpenAI 的形状：函数名 name、参数 arguments（一段 JSON 文字）、id "call_…"。
    output：服务器自己执行了时的结果；交给客户端执行时是 None。"""
    name: str
    arguments: str
    output: str | None = None
    id: str = field(default_factory=new_call_id)

    @classmethod
    def from_model(cls, text: str) -> ToolUse:
        """模型在 <tool_call>…</tool_call> 里写的文字 → ToolUse。写得不对（不是 JSON、缺名字……）时
        name 为空、arguments 是原文：这样的调用不会交给客户端，服务器执行它只得到一条错误消息。"""
        parsed = parse_call(text)
        if isinstance(parsed, str):
            return cls("", text)
        name, arguments = parsed
        return cls(name, json.dumps(arguments, ensure_ascii=False))

    def as_openai(self) -> dict:
        """→ OpenAI 的 tool_calls 里的一项；服务器执行过的再带上 output。"""
        call = {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}
        return call if self.output is None else {**call, "output": self.output}


def model_call_text(call: ToolCall) -> str:
    """OpenAI 的一次调用 → 模型写的那段 JSON（format_call 的紧凑写法）。

    arguments 不是 JSON 对象时（写坏了的 JSON、超过 Python 上限的 10000 位整数、嵌套太深……）原样当作字符串放进去：
    模型照样看得到它，parse_call 也认这种写法，执行时只会得到一条 `错误：…` 消息，不会让服务器出错。
    """
    try:
        arguments = json.loads(call.function.arguments)
        if isinstance(arguments, dict):
            return format_call(call.function.name, arguments)
    except (ValueError, RecursionError):
        pass
    return format_call(call.function.name, call.function.arguments)


# ===== 2. 消息列表 → Conversation =====
def to_conversation(messages: Sequence[Message]) -> Conversation:
    """OpenAI 的 messages → Conversation。不合规矩时是一句 400（ApiError），说出是哪一条消息。

    规则：system / developer 被接受但忽略（见 IGNORED_ROLES）；其余从 user 开始，user 与"助手的一轮"交替。
    助手的一轮 = 一条 assistant 消息，或 assistant(tool_calls) + tool [+ assistant(正文)]。
    以 user 结尾：模型从头写回答；以 tool 结尾：模型接着工具的结果写正文（pending）。
    """
    turns = [(i, m) for i, m in enumerate(messages) if m.role not in IGNORED_ROLES]
    if not turns:
        raise ApiError(400, "messages 里没有 user 消息 (no user message)；至少要有一条 role=user 的消息。", "messages")
    history: list[Turn] = []
    k = 0
    while True:
        user_text = _text(*_expect(turns, k, "user"))
        reply, k = _assistant_turn(turns, k + 1)
        if reply is None:
            return Conversation(history, user_text)
        if k < len(turns):
            history += [user_text, replace(reply, reasoning="") if isinstance(reply, Reply) else reply]
        elif turns[-1][1].role == "tool":
            return Conversation(history, user_text, pending=reply)
        else:
            raise ApiError(400, "最后一条消息必须是 user 或 tool (the last message must be from the user or a tool)。",
                           "messages")


def _expect(turns: list[tuple[int, Message]], k: int, role: str) -> tuple[int, Message]:
    """turns[k] 必须是 role 这个角色；返回 (它在 messages 里的位置, 消息)。"""
    i, message = turns[k]
    if message.role != role:
        raise ApiError(400, f"messages[{i}] 的 role 是 {message.role}，这里应该是 {role}：除 system 外，"
                       "消息必须 user、assistant 交替，从 user 开始；tool 消息只能紧跟在带 tool_calls 的 assistant 后面 "
                       "(roles must alternate).", f"messages[{i}].role")
    return i, message


def _text(i: int, message: Message) -> str:
    """user 与 tool 消息必须有 content。"""
    if message.content is None:
        raise ApiError(400, f"messages[{i}] ({message.role}) 缺少 content (missing content)。", f"messages[{i}].content")
    return message.text()


def _assistant_turn(turns: list[tuple[int, Message]], k: int) -> tuple[Turn | None, int]:
    """从 turns[k] 读出助手的一轮 → (str 或 Reply, 下一轮的位置)；k 已到结尾时是 (None, k)。"""
    if k == len(turns):
        return None, k
    i, message = _expect(turns, k, "assistant")
    if not message.tool_calls:
        return message.text(), k + 1
    if len(message.tool_calls) > 1:
        raise ApiError(400, f"messages[{i}] 有 {len(message.tool_calls)} 个 tool_calls；这个模型一次回答只调用一个工具 "
                       "(one tool call per reply)。", f"messages[{i}].tool_calls")
    if k + 1 == len(turns) or turns[k + 1][1].role != "tool":
        raise ApiError(400, f"messages[{i}] 带 tool_calls，后面必须紧跟一条 role=tool 的消息（工具执行的结果）。",
                       "messages")
    result = _text(*turns[k + 1])
    reply = Reply("", message.reasoning_content or "", model_call_text(message.tool_calls[0]), result)
    k += 2
    if k < len(turns) and turns[k][1].role == "assistant" and not turns[k][1].tool_calls:
        return replace(reply, content=turns[k][1].text()), k + 1  # 工具结果之后的正文
    return reply, k
