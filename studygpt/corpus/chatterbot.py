"""chatterbot-corpus 的中文部分 → 对话 (the Chinese part of chatterbot-corpus as dialogues).

chatterbot-corpus（BSD-3 许可，作者 Gunther Cox）是 PyPI 上的一个包，是本项目的依赖。
它的中文数据是 `chatterbot_corpus/data/chinese/*.yml`，每个文件形如：

    conversations:
    - - 你好          ← 用户 (user)
      - 嗨            ← 助手 (assistant)
      - ...           ← 还可以接着轮流说下去

这里在读取时当场转换 (on the fly)，不把它的数据复制进本仓库。
"""
from __future__ import annotations

import importlib.util
from importlib.resources import files

from studygpt.corpus.read import Dialogue
from studygpt.errors import StudyGPTError

_PACKAGE = "chatterbot_corpus"


def _clean_conversation(items: list) -> Dialogue:
    """YAML 里的一段对话 → 一段可用对话 (one YAML conversation → one usable dialogue).

    入: YAML 解析出的列表；个别句子可能被 YAML 读成数字或布尔值 (e.g. `- 42`)。
    出: 去掉首尾空白的句子列表，偶数长度；不够一问一答时为空列表。

    数字、布尔值转成字符串；None、空串和嵌套结构没有可说的话，直接略过。
    句数为奇数时，最后一句用户话没有回复，丢掉它，保证 user / assistant 严格交替。
    """
    texts = []
    for item in items:
        if isinstance(item, (str, int, float)):  # bool 是 int 的子类，也在这里
            text = str(item).strip()
            if text:
                texts.append(text)
    return texts[: len(texts) // 2 * 2]


def chatterbot_dialogues() -> list[Dialogue]:
    """读 chatterbot-corpus 的全部中文对话 (all Chinese conversations of chatterbot-corpus).

    出: 对话列表，每段是偶数长度 ≥ 2 的字符串列表，按文件名排序、文件内保持原顺序（结果确定）。
    包没装时抛 StudyGPTError，消息里给出安装命令。
    """
    if importlib.util.find_spec(_PACKAGE) is None:
        raise StudyGPTError("没有安装 chatterbot-corpus (package missing) — 请运行: pip install chatterbot-corpus")
    try:
        import yaml  # 延迟导入：只有读这份语料时才需要 PyYAML
    except ImportError:
        raise StudyGPTError("没有安装 PyYAML (package missing) — 请运行: pip install pyyaml") from None

    chinese = files(_PACKAGE) / "data" / "chinese"
    dialogues: list[Dialogue] = []
    for entry in sorted(chinese.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yml"):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        for conversation in data.get("conversations") or []:
            dialogue = _clean_conversation(conversation if isinstance(conversation, list) else [])
            if dialogue:
                dialogues.append(dialogue)
    return dialogues
