"""交互式聊天 (interactive chat)：多轮、流式输出，支持几个斜杠命令。

从终端或管道读入都行（管道读入时方便测试：`echo 你好 | studygpt chat runs/quickstart`）。

每一轮都走 tool_use.stream_reply：学过 <think>、<tool_call> 的模型（第 16、17 章）打的草稿、发出的计算器调用
都照样进行，计算器由程序执行；屏幕上默认只显示回答，`/think` 切换是否也显示草稿和调用（ReplyPrinter）：
    思考：个位7+6+0=13，十位5+8+1=14，百位4+3+1=08
    调用 calculator(457+386) → 843
    AI: 457加386等于843。

历史怎样保留 (how the history is kept)：每说完一轮，这一问一答就记进历史。下一句问题交给模型时，
连同尽量多的最近几轮一起放进提示 (prompt)，提示最多 prompt_budget 个词元（tiny 模型默认 96：
上下文窗口 192 的一半留给回答）；放不下时从最早的一整轮丢起（generate.fit_prompt），
所以模型总能看到最新的几轮，看不到太早的。`/history` 显示模型上一次看到了哪几轮，`/reset` 清空历史。
历史里助手的话是整个 Reply（草稿、调用、结果、正文），下一轮的提示照训练时的格式把它们原样放进去。
"""
from __future__ import annotations

import sys
from typing import Sequence, TextIO

from studygpt.errors import StudyGPTError
from studygpt.generation.generate import GenerationSettings, prompt_budget
from studygpt.generation.tool_use import (
    collect_reply,
    describe_call,
    stream_reply,
    thinks_or_calls,
)
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import (
    Reply,
    Turn,
    fit_prompt,
    render_conversation,
    render_prompt,
)

EXIT_WORDS = {"exit", "quit", "bye"}
HELP = """命令 (commands):
  /reset                 清空对话历史，开始新话题
  /history               看看对话历史：上一次回答时模型看到了哪几轮、哪几轮已经放不下
  /set temperature 0.9   修改采样设置：temperature, top_k, top_p, repetition_penalty, max_length, seed
  /show                  查看当前设置
  /think                 显示 / 隐藏草稿 (<think>) 与工具调用 (tool call) 和它的结果；默认隐藏，只显示回答
  /help                  显示本帮助
  exit / quit / bye      退出

快速上手的模型 (runs/quickstart，约 0.6M 参数，只训练 3 分钟) 会什么、不会什么：
  会：内置语料里的问候、闲聊、自我介绍和大模型入门问题，例如"什么是注意力机制？"；
      两位数加法，包括训练时从没见过的算式，例如"23加58等于多少？"。
  不会：内置语料以外的常识，例如"中国的首都是哪里？"；英文，例如"Hello, who are you?"。
      这时它会说出通顺却答非所问、甚至乱码的话——这是预料之中的：它只读过约 18 万个字的内置语料，四分之三是加法题。
  想要更大、更懂事的模型：在真实语料上训练，例如
      studygpt data download xiaohuangji
      studygpt train --data data/xiaohuangji50w_nofenci.conv --out runs/xhj --preset study（最好有 GPU）"""
SETTABLE = {"temperature": float, "top_k": int, "top_p": float, "repetition_penalty": float,
            "max_length": int, "seed": int}


def apply_setting(settings: GenerationSettings, name: str, value: str) -> GenerationSettings:
    """`/set name value`：检查名字与取值，返回新的设置；不合理就报错，原来的设置不变。"""
    if name not in SETTABLE:
        raise StudyGPTError(f"不能设置 {name!r}；可以设置：{', '.join(SETTABLE)}。")
    return settings.updated(**{name: None if value.lower() == "none" else SETTABLE[name](value)})


def seen_exchanges(tokenizer: Tokenizer, history: Sequence[Turn], text: str, budget: int) -> int:
    """fit_prompt 把这句问题连同最近几轮历史放进 budget 个词元：返回它放进了几轮（一问一答算一轮）。"""
    length = len(fit_prompt(tokenizer, history, text, budget))
    for k in range(len(history) // 2, 0, -1):
        if len(render_prompt(history[len(history) - 2 * k:], text, tokenizer)) == length:
            return k
    return 0


def describe_history(tokenizer: Tokenizer, history: Sequence[Turn], seen: int, budget: int) -> str:
    """/history 的内容：每一轮是否被模型看到、各占多少词元。history 的最后一轮就是上一句问题和它的回答。"""
    n = len(history) // 2
    if n == 0:
        return "（对话历史是空的 (empty history)）"
    dropped = n - 1 - seen
    lines = [f"（对话历史 (history) 共 {n} 轮；回答上一句时，模型看到了之前的 {seen} 轮和那句问题，"
             f"提示最多 {budget} 个词元；更早的 {dropped} 轮放不下，模型看不到了）"]
    for i in range(n):
        user, reply = history[2 * i], history[2 * i + 1]
        tokens = len(render_conversation([user, reply], tokenizer)[0])
        mark = "上一句 latest" if i == n - 1 else ("看到 seen" if i >= dropped else "已丢弃 dropped")
        lines.append(f"  第 {i + 1} 轮 [{mark}] {tokens} 个词元 · 您: {user} | AI: {reply}")
    return "\n".join(lines)


def describe_think(show_think: bool, tokenizer: Tokenizer) -> str:
    """/think 之后的那句话：现在显示还是隐藏；模型根本没学过草稿和工具时也说一声。"""
    state = "显示 (shown)" if show_think else "隐藏 (hidden)"
    note = "" if thinks_or_calls(tokenizer) else "；这个模型的词表里没有 <think>、<tool_call>，它不会打草稿、不会调用工具"
    return f"（草稿与工具调用 (reasoning and tool calls)：{state}{note}）"


DIM, RESET = "\033[2m", "\033[0m"  # 终端里的暗色 (dim) 与恢复原样


class ReplyPrinter:
    """边生成边把一轮回答打印出来（stream_reply 交出的片段），最后返回整个 Reply。

    正文总是显示，前面是 prefix（聊天里是 "AI: "，`studygpt generate` 里是空的）。show_think 时，
    草稿和工具调用在正文之前各占一行；dim 时这两行用暗色（只在终端里用：管道、文件里不写颜色码）。
    不显示思考时 prefix 马上打出来，和普通模型一样；显示时等到正文开始再打，好让它跟在思考的几行之后。
    """

    def __init__(self, stdout: TextIO, show_think: bool, dim: bool = False, prefix: str = "") -> None:
        self.out, self.show_think, self.dim, self.prefix = stdout, show_think, dim, prefix
        self.line: str | None = None  # 当前这一行在显示什么："reasoning"、"tool"、"content"；None 是还没开始
        self.call = ""                # 工具调用的 JSON：等结果来了再整行显示

    def print_reply(self, pieces) -> Reply:
        """打印每个片段 (部分, 文字)，返回它们拼成的 Reply（聊天记进历史）。"""
        seen = []
        if not self.show_think:
            self._start("content")
        for part, text in pieces:
            seen.append((part, text))
            self._show(part, text)
        self._start("content")  # 一个字正文也没有时，也要有 prefix 这一行
        reply = collect_reply(seen)
        if not reply.content.strip():  # 模型一开口就写了 <|end|>（或只写了空白）：说出来，别留一个看不见的空行
            self._write("（空回答 (empty reply)）")
        print(file=self.out, flush=True)
        return reply

    def _show(self, part: str, text: str) -> None:
        if part == "content":
            self._start("content")
            self._write(text)
        elif part == "tool_call":
            self.call += text
        elif self.show_think and part == "reasoning":
            self._start("reasoning")
            self._write(text)
        elif self.show_think and part == "tool_result":
            self._start("tool")
            self._write(f"调用 {describe_call(self.call)} → {text}")

    def _start(self, line: str) -> None:
        """换到显示 line 的那一行：结束上一行（恢复颜色、换行），再写这一行的开头。"""
        if self.line == line:
            return
        if self.line is not None:
            self._write((RESET if self.dim and self.line != "content" else "") + "\n")
        self.line = line
        if line == "content":
            self._write(self.prefix)
        else:
            self._write((DIM if self.dim else "") + ("思考：" if line == "reasoning" else ""))

    def _write(self, text: str) -> None:
        print(text, end="", file=self.out, flush=True)


def chat_loop(model: DialogueModel, tokenizer: Tokenizer, settings: GenerationSettings,
              stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, show_think: bool = False) -> None:
    """读一行、答一行，直到 exit/quit/bye 或输入结束。settings 是生成设置（/set 会换成新的）；
    show_think：开始时是否显示草稿与工具调用（/think 切换）。"""
    interactive = stdin.isatty()
    history: list[Turn] = []
    seen = 0            # 上一句问题时模型看到了几轮历史（/history 用）
    warned = False      # 历史第一次放不下时提示一次
    print("学习GPT 聊天 (StudyGPT chat)：输入 /help 看命令、看这个模型会什么不会什么，exit 退出。", file=stdout)
    while True:
        if interactive:
            print("\n您: ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:  # 输入结束 (EOF)
            break
        text = line.strip()
        if not text:
            continue
        if text.lower() in EXIT_WORDS:
            break
        budget = prompt_budget(model.config.max_len, settings.max_length)
        if text.startswith("/"):
            parts = text.split()
            try:
                if parts[0] == "/reset":
                    history.clear()
                    seen, warned = 0, False
                    print("（已清空对话历史）", file=stdout)
                elif parts[0] == "/history":
                    print(describe_history(tokenizer, history, seen, budget), file=stdout)
                elif parts[0] == "/set" and len(parts) == 3:
                    settings = apply_setting(settings, parts[1], parts[2])
                    print(f"（{parts[1]} = {settings.as_options()[parts[1]]}）", file=stdout)
                elif parts[0] == "/show":
                    print(settings.as_options(), file=stdout)
                elif parts[0] == "/think":
                    show_think = not show_think
                    print(describe_think(show_think, tokenizer), file=stdout)
                else:
                    print(HELP, file=stdout)
            except (StudyGPTError, ValueError) as err:
                print(f"（设置无效：{err}）", file=stdout)
            continue
        seen = seen_exchanges(tokenizer, history, text, budget)
        if seen < len(history) // 2 and not warned:
            warned = True
            print("（提示：历史超出了上下文窗口 (context window)，最早的几轮不再给模型看；"
                  "/history 查看，/reset 清空）", file=stdout)
        if not interactive:
            print(f"您: {text}", file=stdout)
        printer = ReplyPrinter(stdout, show_think, dim=stdout.isatty(), prefix="AI: ")
        reply = printer.print_reply(stream_reply(model, tokenizer, text, history, settings))
        history += [text, reply]
    print("再见 (bye)！", file=stdout)

