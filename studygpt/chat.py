"""交互式聊天 (interactive chat)：多轮、流式输出，支持几个斜杠命令。

从终端或管道读入都行（管道读入时方便测试：`echo 你好 | studygpt chat runs/quickstart`）。
"""
from __future__ import annotations

import sys
from typing import TextIO

from studygpt.errors import StudyGPTError
from studygpt.generate import GenerationSettings, stream_response
from studygpt.model import DialogueModel
from studygpt.tokenizer import Tokenizer

EXIT_WORDS = {"exit", "quit", "bye"}
HELP = """命令 (commands):
  /reset                 清空对话历史，开始新话题
  /set temperature 0.9   修改采样设置：temperature, top_k, top_p, repetition_penalty, max_length, seed
  /show                  查看当前设置
  /help                  显示本帮助
  exit / quit / bye      退出"""
SETTABLE = {"temperature": float, "top_k": int, "top_p": float, "repetition_penalty": float,
            "max_length": int, "seed": int}


def apply_setting(settings: GenerationSettings, name: str, value: str) -> GenerationSettings:
    """`/set name value`：检查名字与取值，返回新的设置；不合理就报错，原来的设置不变。"""
    if name not in SETTABLE:
        raise StudyGPTError(f"不能设置 {name!r}；可以设置：{', '.join(SETTABLE)}。")
    return settings.updated(**{name: None if value.lower() == "none" else SETTABLE[name](value)})


def chat_loop(model: DialogueModel, tokenizer: Tokenizer, settings: GenerationSettings,
              stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """读一行、答一行，直到 exit/quit/bye 或输入结束。settings 是生成设置（/set 会换成新的）。"""
    interactive = stdin.isatty()
    history: list[str] = []
    print("学习GPT 聊天 (StudyGPT chat)：输入 /help 看命令，exit 退出。", file=stdout)
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
        if text.startswith("/"):
            parts = text.split()
            try:
                if parts[0] == "/reset":
                    history.clear()
                    print("（已清空对话历史）", file=stdout)
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
