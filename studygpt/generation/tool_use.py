"""工具调用 (tool use)：模型写出一次调用，程序执行它，把结果放回对话，模型接着回答。

模型写的调用是 OpenAI 函数调用 (function calling) 的形状，夹在 <tool_call>…</tool_call> 之间：
    {"name": "calculator", "arguments": {"expression": "457+386"}}
流程（stream_reply，边生成边交出片段；respond 把片段拼成一个 Reply）：
    1. 照常生成，直到 <|end|>；每个词元按 parse_reply 的规则归入草稿、工具调用或正文；
    2. 有工具调用时 run_tool 执行它（只认 TOOLS 里的工具；参数不对、算不了都只得到一条错误消息，绝不抛异常）；
    3. 把结果作为 <|tool|> 消息接在后面，再让模型从 <|assistant|> 接着写正文。
聊天 (chat.py)、`studygpt generate` 都走这一条路；词表里没有 <think>/<tool_call> 的模型只会写出正文，和普通生成一样。
"""
from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator, Sequence

from studygpt.generation.calculator import CalculatorError, calculate, format_number
from studygpt.generation.generate import (
    GenerationSettings,
    generate_tokens,
    prompt_budget,
)
from studygpt.tokenizer.chat_format import (
    SEGMENT_AFTER,
    Reply,
    Turn,
    fit_prompt,
    parse_reply,
    reply_prefix,
)
from studygpt.tokenizer.specials import EXTRA_TOKENS

MAX_CALL_CHARS = 1000  # 一次调用的 JSON 最长多少个字符


def calculator_tool(arguments: dict) -> str:
    expression = arguments.get("expression")
    if not isinstance(expression, str):
        return '错误：calculator 需要参数 {"expression": "算式"}'
    try:
        return format_number(calculate(expression))
    except CalculatorError as err:
        return f"错误：{err}"


TOOLS: dict[str, Callable[[dict], str]] = {"calculator": calculator_tool}

# 给 OpenAI 兼容接口 (serve) 和文档用的工具说明（JSON Schema），与 calculator_tool 的参数一致
CALCULATOR_SCHEMA = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "计算整数的 + - × ÷ 和括号组成的算式 (integer arithmetic)",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                       "required": ["expression"]},
    },
}


def format_call(name: str, arguments: dict) -> str:
    """一次调用 → 模型写的那段 JSON（紧凑写法，省词元）：{"name":"calculator","arguments":{"expression":"1+2"}}。"""
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False, separators=(",", ":"))


def parse_call(text: str) -> tuple[str, dict] | str:
    """模型写的调用 → (名字, 参数)；写得不对时返回一条错误消息（str），绝不抛异常。

    接受 OpenAI 的两种参数写法：一个 JSON 对象，或一个内容是 JSON 对象的字符串。
    """
    if len(text) > MAX_CALL_CHARS:
        return f"错误：工具调用太长（{len(text)} 个字符，最多 {MAX_CALL_CHARS}）"
    try:
        call = json.loads(text)
    except (ValueError, RecursionError):
        return "错误：工具调用不是合法的 JSON"
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return '错误：工具调用应是 {"name": ..., "arguments": {...}}'
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError):
            return "错误：arguments 不是合法的 JSON"
    if not isinstance(arguments, dict):
        return "错误：arguments 应是一个 JSON 对象"
    return call["name"], arguments


def run_tool(text: str, tools: dict[str, Callable[[dict], str]] | None = None) -> str:
    """执行模型写的一次调用，返回给模型看的结果文字（出错时是一条 `错误：…` 消息）。"""
    tools = TOOLS if tools is None else tools
    parsed = parse_call(text)
    if isinstance(parsed, str):
        return parsed
    name, arguments = parsed
    if name not in tools:
        return f"错误：没有叫 {name!r} 的工具；可用：{', '.join(tools)}"
    return tools[name](arguments)


def describe_call(text: str) -> str:
    """给人看的一次调用：calculator(457+386)。写得不对、解析不了的调用原样显示。"""
    parsed = parse_call(text)
    if isinstance(parsed, str):
        return text
    name, arguments = parsed
    return f"{name}({', '.join(str(value) for value in arguments.values())})"


def thinks_or_calls(tokenizer) -> bool:
    """词表里有没有 <think> / <tool_call> 这些词元：有，模型才可能打草稿、调用工具。"""
    return any(t in tokenizer.vocab for t in EXTRA_TOKENS)


# ===== 边生成边拆 (streaming) =====
PARTS = ("reasoning", "tool_call", "tool_result", "content")  # Reply 的四个部分：片段就按这些名字交出


def stream_until_end(model, prompt: list[int], settings: GenerationSettings, tokenizer) -> Iterator[tuple[str, str]]:
    """生成一段（到 <|end|> 为止），每个词元交出 (部分, 文字)。归类规则与 parse_reply 相同，只是不等整段写完：
    哪个控制词元之后归哪一部分，查 chat_format.SEGMENT_AFTER。"""
    part = "content"
    for step in generate_tokens(model, prompt, settings.max_length, settings.sampling, tokenizer, settings.seed):
        name = tokenizer.id_to_token[step.token_id]
        if name in SEGMENT_AFTER:  # parse_reply 与服务器用的同一张表
            part = SEGMENT_AFTER[name]
        elif step.visible and step.text:  # 其他特殊词元不显示；BPE 的半个汉字 (text 为空) 等下一个词元补全
            yield part, step.text


def stream_reply(model, tokenizer, user_text: str, history: Sequence[Turn] = (),
                 settings: GenerationSettings | None = None, tools: dict | None = None) -> Iterator[tuple[str, str]]:
    """回答一句话，边生成边交出片段 (部分, 文字)，部分是 PARTS 之一。

    草稿、调用、正文一个词元一个片段；模型写完调用（<|end|>）后执行它，结果整段交出一次（"tool_result"），
    再接着生成正文。history 里助手的话可以是 Reply：上一轮的草稿和调用也照原样放进提示。
    """
    settings = settings or GenerationSettings()
    budget = prompt_budget(model.config.max_len, settings.max_length)
    prompt = fit_prompt(tokenizer, history, user_text, budget)
    written = {part: "" for part in PARTS}
    for part, text in stream_until_end(model, prompt, settings, tokenizer):
        written[part] += text
        yield part, text
    if not written["tool_call"]:
        return
    result = run_tool(written["tool_call"], tools)
    yield "tool_result", result
    pending = Reply("", written["reasoning"], written["tool_call"], result)
    prompt = prompt[:-1] + reply_prefix(pending, tokenizer)  # 提示以 <|assistant|> 结尾，换成"已经有的部分"
    for part, text in stream_until_end(model, prompt, settings, tokenizer):  # 提示已占满上下文时什么也不生成
        if part == "content":  # 一次回答只调用一次工具：拿到结果之后只要正文
            yield part, text


def collect_reply(pieces: Iterable[tuple[str, str]]) -> Reply:
    """stream_reply 交出的片段 → 整个 Reply（每一部分的片段按顺序拼起来）。"""
    parts = {part: "" for part in PARTS}
    for part, text in pieces:
        parts[part] += text
    return Reply(**parts)


def respond(model, tokenizer, user_text: str, history: Sequence[Turn] = (),
            settings: GenerationSettings | None = None, tools: dict | None = None) -> Reply:
    """回答一句话：可能先想（<think>），可能调用一次工具。返回整个 Reply（草稿、调用、结果、正文）。"""
    return collect_reply(stream_reply(model, tokenizer, user_text, history, settings, tools))


def greedy_replies(model, tokenizer, questions: Sequence[str], max_length: int = 100, batch_size: int = 64,
                   tools: dict | None = None) -> list[Reply]:
    """考试用：一批问题一起贪心解码，连同工具调用。先一起写到 <|end|>；写出了工具调用的那些，
    执行调用、接上结果，再一起写正文。返回每道题的整个 Reply。"""
    from studygpt.generation.batch_decode import greedy_rows
    from studygpt.model.scoring import eval_mode
    from studygpt.tokenizer.specials import END
    end_id = tokenizer.token_id(END)
    budget = prompt_budget(model.config.max_len, max_length)
    prompts = [fit_prompt(tokenizer, [], q, budget) for q in questions]

    def decode_all(rows: list[list[int]]) -> list[Reply]:
        out: list[Reply] = []
        with eval_mode(model):
            for start in range(0, len(rows), batch_size):
                out += [parse_reply(ids, tokenizer) for ids in greedy_rows(model, rows[start:start + batch_size],
                                                                            max_length, end_id)]
        return out

    replies = decode_all(prompts)
    calls = [i for i, r in enumerate(replies) if r.tool_call]
    pending = {i: Reply("", replies[i].reasoning, replies[i].tool_call, run_tool(replies[i].tool_call, tools))
               for i in calls}
    continued = [prompts[i][:-1] + reply_prefix(pending[i], tokenizer) for i in calls]
    fits = [i for i, ids in zip(calls, continued) if len(ids) < model.config.max_len]
    finals = dict(zip(fits, decode_all([c for i, c in zip(calls, continued) if len(c) < model.config.max_len])))
    for i in calls:
        p = pending[i]
        replies[i] = Reply(finals[i].content if i in finals else "", p.reasoning, p.tool_call, p.tool_result)
    return replies
