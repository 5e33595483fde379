"""交互式聊天 (interactive chat)：多轮、流式输出，支持几个斜杠命令。

从终端或管道读入都行（管道读入时方便测试：`echo 你好 | studygpt chat runs/quickstart`）。

历史怎样保留 (how the history is kept)：每说完一轮，这一问一答就记进历史。下一句问题交给模型时，
连同尽量多的最近几轮一起放进提示 (prompt)，提示最多 prompt_budget 个词元（tiny 模型默认 96：
上下文窗口 192 的一半留给回答）；放不下时从最早的一整轮丢起（generate.fit_prompt），
所以模型总能看到最新的几轮，看不到太早的。`/history` 显示模型上一次看到了哪几轮，`/reset` 清空历史。
"""
from __future__ import annotations

import sys
from typing import Sequence, TextIO

from studygpt.errors import StudyGPTError
from studygpt.generation.generate import GenerationSettings, stream_response
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import (
    fit_prompt,
    prompt_budget,
    render_conversation,
    render_prompt,
)

EXIT_WORDS = {"exit", "quit", "bye"}
HELP = """命令 (commands):
  /reset                 清空对话历史，开始新话题
  /history               看看对话历史：上一次回答时模型看到了哪几轮、哪几轮已经放不下
  /set temperature 0.9   修改采样设置：temperature, top_k, top_p, repetition_penalty, max_length, seed
  /show                  查看当前设置
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


def seen_exchanges(tokenizer: Tokenizer, history: Sequence[str], text: str, budget: int) -> int:
    """fit_prompt 把这句问题连同最近几轮历史放进 budget 个词元：返回它放进了几轮（一问一答算一轮）。"""
    length = len(fit_prompt(tokenizer, history, text, budget))
    for k in range(len(history) // 2, 0, -1):
        if len(render_prompt(history[len(history) - 2 * k:], text, tokenizer)) == length:
            return k
    return 0


def describe_history(tokenizer: Tokenizer, history: Sequence[str], seen: int, budget: int) -> str:
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


def chat_loop(model: DialogueModel, tokenizer: Tokenizer, settings: GenerationSettings,
              stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """读一行、答一行，直到 exit/quit/bye 或输入结束。settings 是生成设置（/set 会换成新的）。"""
    interactive = stdin.isatty()
    history: list[str] = []
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
        print("AI: ", end="", file=stdout, flush=True)
        pieces = []
        for piece in stream_response(model, tokenizer, text, settings=settings, history=history):
            pieces.append(piece)
            print(piece, end="", file=stdout, flush=True)
        print(file=stdout)
        history += [text, "".join(pieces)]
    print("再见 (bye)！", file=stdout)
