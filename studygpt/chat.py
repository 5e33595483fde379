"""交互式聊天 (interactive chat)：多轮、流式输出，支持几个斜杠命令。

从终端或管道读入都行（管道读入时方便测试：`echo 你好 | studygpt chat runs/quickstart`）。
"""
from __future__ import annotations

import sys
from typing import TextIO

from studygpt.errors import StudyGPTError
from studygpt.generate import SamplingConfig, stream_response
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


def apply_setting(settings: dict, name: str, value: str) -> None:
    """`/set name value`：检查名字与取值，不合理就报错，设置保持不变。"""
    if name not in SETTABLE:
        raise StudyGPTError(f"不能设置 {name!r}；可以设置：{', '.join(SETTABLE)}。")
    new = dict(settings)
    new[name] = None if value.lower() == "none" else SETTABLE[name](value)
    SamplingConfig(new["temperature"], new["top_k"], new["top_p"], new["repetition_penalty"])  # 校验
    settings.update(new)


def chat_loop(model: DialogueModel, tokenizer: Tokenizer, settings: dict,
              stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """读一行、答一行，直到 exit/quit/bye 或输入结束。settings 是采样设置（会被 /set 修改）。"""
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
                    apply_setting(settings, parts[1], parts[2])
                    print(f"（{parts[1]} = {settings[parts[1]]}）", file=stdout)
                elif parts[0] == "/show":
                    print(settings, file=stdout)
                else:
                    print(HELP, file=stdout)
            except (StudyGPTError, ValueError) as err:
                print(f"（设置无效：{err}）", file=stdout)
            continue
        if not interactive:
            print(f"您: {text}", file=stdout)
        print("AI: ", end="", file=stdout, flush=True)
        pieces = []
        for piece in stream_response(model, tokenizer, text, history=history, **settings):
            pieces.append(piece)
            print(piece, end="", file=stdout, flush=True)
        print(file=stdout)
        history += [text, "".join(pieces)]
    print("再见 (bye)！", file=stdout)
