"""内置语料 (the built-in corpus): 不下载任何东西就能训练、评测的三份数据。

- own：`studygpt_zh.conv`，为 StudyGPT 专门写的中文对话（问候、闲聊、自我介绍、大模型入门问答），MIT 许可；
- chatterbot：PyPI 包 chatterbot-corpus 的中文部分，读取时当场转换（见 chatterbot.py），BSD-3 许可；
- addition：程序生成的两位数加法，留出一部分算式检验泛化（见 skills.py）。

另有 `prompts.json`：快速上手报告里用的 20 个固定聊天提示，每个带“回复里应出现的关键词”。
`eval_prompts.json`：`studygpt eval` 生成回答用的 30 个固定提示（含多轮追问）。
来源与许可证详见同目录的 README.md。
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from studygpt.corpus.chatterbot import chatterbot_dialogues
from studygpt.corpus.read import Dialogue, read_dialogues
from studygpt.corpus.skills import addition_split
from studygpt.errors import StudyGPTError

_HERE = Path(__file__).resolve().parent


def builtin_conv_path() -> Path:
    """自写语料文件的路径 (path of studygpt_zh.conv, installed as package data)."""
    return _HERE / "studygpt_zh.conv"


@dataclass
class BuiltinCorpus:
    """内置语料的三部分 (the three parts), 每部分都是对话列表；加法另有留出题。"""

    own: list[Dialogue]                     # studygpt_zh.conv
    chatterbot: list[Dialogue]              # chatterbot-corpus 中文部分
    addition_train: list[Dialogue]          # 训练用的加法题
    addition_heldout: list[tuple[str, str]]  # 留出的 (问题, 标准答案)，训练时从不出现

    def train_dialogues(self, own_repeat: int = 3, chatterbot_repeat: int = 1,
                        addition_repeat: int = 0) -> list[Dialogue]:
        """拼出训练用的对话列表 (the combined training list), 顺序固定，打乱交给数据加载器。

        入: 每部分重复几遍 (how many copies of each part), 都是 ≥ 0 的整数。
            自写语料默认重复 3 遍：它最小，却是快速上手报告要考的内容，重复几遍让它在几分钟里学得会。
            加法默认 0 遍：约 7,300 段算式会挤占几分钟的训练时间，只在做泛化实验时打开。
        出: 新的列表（每段对话都是副本，改它不会改到语料本身）。
        """
        parts = [(own_repeat, self.own), (chatterbot_repeat, self.chatterbot),
                 (addition_repeat, self.addition_train)]
        if any(not isinstance(n, int) or n < 0 for n, _ in parts):
            raise StudyGPTError(f"重复次数必须是 ≥ 0 的整数 (repeat counts must be ints ≥ 0): "
                                f"own={own_repeat}, chatterbot={chatterbot_repeat}, addition={addition_repeat}")
        return [list(d) for n, part in parts for _ in range(n) for d in part]


def builtin_corpus(seed: int = 0) -> BuiltinCorpus:
    """读入全部内置语料 (load everything). 入: seed 只影响加法的训练/留出划分。"""
    own, _ = read_dialogues(builtin_conv_path())
    addition_train, addition_heldout = addition_split(seed=seed)
    return BuiltinCorpus(own=own, chatterbot=chatterbot_dialogues(),
                         addition_train=addition_train, addition_heldout=addition_heldout)


def write_conv(dialogues: list[Dialogue], path: str | Path) -> None:
    """把对话存成 .conv 文件 (save dialogues as .conv): 每段一行 `E`，每句一行 `M 文本`。

    入: 对话列表，每段偶数长度 ≥ 2、每句非空且不含换行——这样读回来与写进去完全相同；
        不符合时抛 StudyGPTError，说明是第几段对话。
    写入是原子的 (atomic)：先写临时文件再 os.replace，中途出错不会留下半个文件。
    """
    for i, dialogue in enumerate(dialogues, 1):
        if len(dialogue) < 2 or len(dialogue) % 2:
            raise StudyGPTError(f"第 {i} 段对话有 {len(dialogue)} 句 — 需要偶数句 (user/assistant 成对) 且至少 2 句")
        if any(not text.strip() or "\n" in text or "\r" in text for text in dialogue):
            raise StudyGPTError(f"第 {i} 段对话含空句或换行符 — .conv 里一句话必须非空且只占一行")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for dialogue in dialogues:
            f.write("E\n" + "".join(f"M {text.strip()}\n" for text in dialogue))
    os.replace(tmp, path)


def load_chat_prompts() -> list[dict]:
    """快速上手报告的 20 个聊天提示 (the fixed chat prompts).

    出: [{"prompt": "你好", "expect": ["你好"]}, ...]；回复里出现 expect 中任意一项就算答对。
    """
    return json.loads((_HERE / "prompts.json").read_text(encoding="utf-8"))


def load_eval_prompts() -> list[dict]:
    """`studygpt eval` 的 30 个固定提示 (the fixed evaluation prompts): 问候、闲聊、提问、多轮追问。

    出: [{"category": "greeting", "prompt": "你好", "history": []}, ...]；history 是之前的轮次
        [用户, 助手, ...]（偶数长度），多轮追问要靠它才答得上来。格式不对时抛 StudyGPTError。
    """
    path = _HERE / "eval_prompts.json"
    items = json.loads(path.read_text(encoding="utf-8"))
    for i, item in enumerate(items, 1):
        item.setdefault("history", [])
        if not isinstance(item.get("prompt"), str) or not item["prompt"] or len(item["history"]) % 2:
            raise StudyGPTError(f"{path}: 第 {i} 个提示需要非空的 prompt，history 必须是成对的 [用户, 助手, ...]")
    return items


def check_chat_reply(item: dict, reply: str) -> bool:
    """回复是否答对 (is the reply acceptable): 包含 item["expect"] 里任意一个关键词。"""
    return any(keyword in reply for keyword in item["expect"])
