"""读语料 (reading dialogue corpora): .conv / JSONL / TSV → 对话 (dialogues) + 读取报告 (ReadReport).

一段对话 (dialogue) 在本项目里就是一个字符串列表：用户、助手、用户、助手……交替，长度总是偶数且 ≥ 2。
三种文件格式：

- `.conv`（小黄鸡 Xiaohuangji 格式）：`E` 一行开始一段对话，`M 文本` 一行是一句话，句子按
  user / assistant 交替。真实文件有约 45 万段对话，所以逐行流式读取 (streaming)，从不整个读进内存。
- JSONL：每行 `{"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}, ...]}`。
- TSV：每行 `问题<TAB>回答`，一行就是一段单轮对话 (single exchange)。

原则：坏数据不抛异常、也不悄悄丢掉——每一处跳过都记进 `ReadReport.skipped`
（原因 reason → 次数），前 5 个例子带行号记进 `examples`，`summary()` 把它们说给人听。
只有整个文件都用不了（不存在、是文件夹、空文件、一段可用对话都没有）才抛 `StudyGPTError`。
"""
from __future__ import annotations

import collections
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from studygpt.errors import StudyGPTError

Dialogue = list[str]  # 用户、助手交替的句子 (utterances alternating user, assistant); 偶数长度 ≥ 2

# 跳过原因 (reason keys) → 中文说明。键是稳定的英文短词，别的模块和测试按键取数，所以不要改名。
REASONS = {
    "bad_line": "行既不是 M 也不是 E",
    "empty_utterance": "个问答对含空句，整对丢弃",
    "unanswered_turn": "句用户话没有回复，丢弃",
    "invalid_utf8": "行含非法 UTF-8 字节，替换成 U+FFFD 后保留",
    "empty_dialogue": "段对话没有一问一答可用",
    "bad_json": "行不是合法的 JSON 或字段类型不对",
    "bad_role": "行的 role 不是从 user 开始的 user/assistant 交替",
    "system_message": "条 system 消息被忽略",
    "bad_tsv": "行不是「问题<TAB>回答」两个非空列",
}
MAX_EXAMPLES = 5  # 每种原因只留前 5 个例子：足够定位问题，又不会让 45 万行的报告撑爆内存
_BOM = b"\xef\xbb\xbf"  # Windows 记事本爱在 UTF-8 文件开头加的字节序标记 (byte order mark)
_FORMATS = {".conv": "conv", ".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv"}


def _excerpt(text: str, width: int = 40) -> str:
    """截一小段原文放进报告 (a short excerpt for the report)."""
    return text if len(text) <= width else text[:width] + "…"


@dataclass
class ReadReport:
    """读一个文件时看到了什么、跳过了什么 (what was read and what was skipped, with line numbers)."""

    path: str = ""
    fmt: str = ""
    lines: int = 0            # 物理行数 (physical lines read)
    dialogues: int = 0        # 交出去的对话数 (dialogues yielded)
    turns: int = 0            # 保留下来的句子数 (utterances kept)
    skipped: collections.Counter = field(default_factory=collections.Counter)  # reason -> count
    examples: list[tuple[int, str, str]] = field(default_factory=list)  # (line_no, reason, excerpt)

    def note(self, reason: str, line_no: int, excerpt: str = "") -> None:
        """记一次跳过 (count one skip); 每种原因的前 MAX_EXAMPLES 次另存行号和原文片段。"""
        self.skipped[reason] += 1
        if self.skipped[reason] <= MAX_EXAMPLES:
            self.examples.append((line_no, reason, _excerpt(excerpt)))

    def describe(self, reason: str) -> str:
        """一种原因的一句话：'3 行既不是 M 也不是 E (bad_line: 第 5, 9, 12 行)'。"""
        nums = [str(n) for n, r, _ in self.examples if r == reason]
        more = ", …" if self.skipped[reason] > len(nums) else ""
        return f"{self.skipped[reason]:,} {REASONS[reason]} ({reason}: 第 {', '.join(nums)}{more} 行)"

    def summary(self) -> str:
        """给人看的几行中文摘要 (a few human-readable lines).

        出: 第一行是总数；有跳过时每种原因再占一行，按 REASONS 的固定顺序。
        """
        head = (f"读取 {self.path} ({self.fmt}): {self.dialogues:,} 段对话 (dialogues), "
                f"{self.turns:,} 句 (turns), {self.lines:,} 行 (lines)")
        reasons = [r for r in REASONS if self.skipped[r]]
        if not reasons:
            return head + "; 没有跳过任何内容 (nothing skipped)"
        return "\n".join([head + "; 跳过 (skipped):"] + ["  - " + self.describe(r) for r in reasons])


# ===== 1. 逐行读字节 (lines as bytes → text) =====

def _read_lines(path: Path, report: ReadReport) -> Iterator[tuple[int, str]]:
    """逐行读文件 (stream lines), 三种格式共用。

    入: 文件路径; report 会累加 lines 和 invalid_utf8。
    出: (行号 line_no 从 1 开始, 去掉换行符的文本)；空行和只有空白的行不交出去（不算错误）。

    为什么按二进制 (binary) 读、每行自己解码：一是能数出哪几行有坏字节（整文件
    errors="replace" 只会悄悄替换）；二是按 b"\\n" 切行，文本里偶尔出现的 \\x0b、U+2028 之类
    不会被当成换行把一句话劈成两半；三是 CRLF 的 \\r 在这里统一去掉。
    """
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            report.lines = line_no
            if line_no == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # 少见路径 (rare path)：正常行不付出额外代价
                text = raw.decode("utf-8", errors="replace")
                report.note("invalid_utf8", line_no, text.rstrip("\r\n"))
            text = text.rstrip("\r\n")
            if text and not text.isspace():
                yield line_no, text


# ===== 2. 一段原始对话 → 可用的对话 (raw turns → usable dialogues) =====

def _usable_dialogues(turns: list[tuple[int, str]], start_line: int, report: ReadReport) -> list[Dialogue]:
    """把一段原始对话切成可用的对话 (split one raw dialogue into usable ones); .conv 和 JSONL 共用。

    入: turns = [(行号, 已 strip 的句子)]，按位置交替 user, assistant, …（句子可能为空）；
        start_line = 这段对话开始的行（.conv 的 E 行、JSONL 的那一行），一无所获时记在这里。
    出: 对话列表，每段偶数长度 ≥ 2。

    按位置两两配成问答对 (exchange)。含空句的问答对整对丢弃，并在那里把对话切开：
    前后两部分各自成为一段对话——这样剩下的句子仍然严格 user/assistant 交替，
    不会让模型把一句"用户话"当成"助手的回答"来学。最后落单的用户话没有回复，也丢弃。
    """
    out: list[Dialogue] = []
    cur: Dialogue = []
    for i in range(0, len(turns), 2):
        (user_line, user), reply = turns[i], turns[i + 1] if i + 1 < len(turns) else None
        if reply is None:  # 最后一句用户话落单 (odd number of turns)
            report.note("unanswered_turn" if user else "empty_utterance", user_line, user)
        elif user and reply[1]:
            cur += [user, reply[1]]
            continue
        else:  # 问或答是空句：记在空的那一行上，然后从这里切开 (split the dialogue here)
            report.note("empty_utterance", user_line if not user else reply[0], user or reply[1])
        if cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    if not out:
        report.note("empty_dialogue", start_line)
    return out


# ===== 3. 三种格式 (the three formats) =====

def _iter_conv(lines: Iterable[tuple[int, str]], report: ReadReport) -> Iterator[Dialogue]:
    """.conv: `E` 开始一段对话，`M 文本` 是一句话。出: 一段段可用对话。

    第一个 E 之前的 M 行也算一段对话；最后一段没有收尾的 E 也照常保留（E 是"开始"标记，不是"结束"）。
    连着两个 E（中间没有 M 行）算一段空对话 empty_dialogue，这样"对话数 + empty_dialogue = E 的个数"。
    一次只攒一段对话的行 (one block at a time)，所以内存和文件大小无关。
    """
    block: list[tuple[int, str]] = []
    start = 0  # 当前这段对话的 E 行号；0 = 第一个 E 之前（没有 E 打开它，空着也不算空对话）

    def finish() -> list[Dialogue]:
        if block:
            return _usable_dialogues(block, start or block[0][0], report)
        if start:
            report.note("empty_dialogue", start, "E")
        return []

    for line_no, text in lines:
        head, rest = text[0], text[1:]
        # M 后面必须是空白或行尾：否则 "Maybe ..." 这样的英文行会被误当成一句话
        if head == "M" and (not rest or rest[0].isspace()):
            block.append((line_no, rest.strip()))  # 只去首尾空白，句中的 TAB、反斜杠原样保留
        elif head == "E" and (not rest or rest.isspace()):
            yield from finish()
            block, start = [], line_no
        else:
            report.note("bad_line", line_no, text)
    yield from finish()


def _without_surrogates(text: str, line_no: int, report: ReadReport) -> str:
    """JSON 的 "\\ud800" 转义能写出孤立的代理字符 (lone surrogate)：它不是合法文字，写不进 UTF-8 的 vocab.txt。
    和坏字节一样换成 U+FFFD 并记一次 invalid_utf8。"""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        fixed = re.sub("[\ud800-\udfff]", "\ufffd", text)  # 每个代理字符换成一个 U+FFFD
        report.note("invalid_utf8", line_no, fixed)
        return fixed


def _iter_jsonl(lines: Iterable[tuple[int, str]], report: ReadReport) -> Iterator[Dialogue]:
    """JSONL: 每行一个 {"messages": [...]}。出: 一段段可用对话；坏行整行跳过并计数。"""
    for line_no, text in lines:
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError):  # RecursionError：几万层嵌套的 [[[[…，解析器递归太深
            report.note("bad_json", line_no, text)
            continue
        messages = obj.get("messages") if isinstance(obj, dict) else None
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages):
            report.note("bad_json", line_no, text)
            continue
        # system 提示词不是对话的一轮：先拿掉，再检查剩下的是否 user 开头、严格交替
        chat = [m for m in messages if m["role"] != "system"]
        roles = [m["role"] for m in chat]
        if any(role != ("user", "assistant")[i % 2] for i, role in enumerate(roles)):
            report.note("bad_role", line_no, "roles: " + ", ".join(roles))
            continue
        for _ in range(len(messages) - len(chat)):
            report.note("system_message", line_no, text)
        contents = [_without_surrogates(m["content"], line_no, report).strip() for m in chat]
        yield from _usable_dialogues([(line_no, c) for c in contents], line_no, report)


def _iter_tsv(lines: Iterable[tuple[int, str]], report: ReadReport) -> Iterator[Dialogue]:
    """TSV: 每行 `问题<TAB>回答`。出: 每个好行一段单轮对话 [问题, 回答]。"""
    for line_no, text in lines:
        cols = [c.strip() for c in text.split("\t")]
        if len(cols) == 2 and cols[0] and cols[1]:
            yield cols
        else:
            report.note("bad_tsv", line_no, text)


_READERS = {"conv": _iter_conv, "jsonl": _iter_jsonl, "tsv": _iter_tsv}


# ===== 4. 公开接口 (public API) =====

def _check_file(path: str | Path, fmt: str | None) -> tuple[Path, str]:
    """检查文件能读、选出格式 (validate the file, pick the format)。出错抛一行 StudyGPTError。"""
    p = Path(path)
    if not p.exists():
        raise StudyGPTError(f"找不到语料文件 (file not found): {p} — 请检查路径和文件名 (check the path)")
    if p.is_dir():
        raise StudyGPTError(f"{p} 是文件夹 (a directory) — 请指定其中一个 .conv / .jsonl / .tsv 文件")
    if fmt is None:
        fmt = _FORMATS.get(p.suffix.lower())
        if fmt is None:
            raise StudyGPTError(f"{p}: 不认识扩展名 '{p.suffix}' (unknown extension) — "
                                f"请传 fmt='conv' / 'jsonl' / 'tsv'，或把文件改名为 .conv / .jsonl / .tsv")
    else:
        fmt = {"json": "jsonl"}.get(fmt.lower(), fmt.lower())
        if fmt not in _READERS:
            raise StudyGPTError(f"{p}: 不支持的格式 fmt={fmt!r} (unknown format) — 可选 'conv', 'jsonl', 'tsv'")
    if p.stat().st_size == 0:
        raise StudyGPTError(f"{p} 是空文件 (empty file, 0 bytes) — 请换一个有内容的语料文件")
    return p, fmt


_HINTS = {  # 一段可用对话都没有时，按最多的跳过原因给出改法 (the fix, by the commonest reason)
    "bad_line": "这是 .conv 文件吗？(is this a .conv file?) 每段以 E 行开始、每句以 'M ' 开头；别的格式请传 fmt=",
    "bad_json": "JSONL 要求每行一个 {\"messages\": [...]} 对象 (one JSON object per line)",
    "bad_role": "messages 的 role 要从 user 开始、user/assistant 交替",
    "bad_tsv": "TSV 每行应是「问题<TAB>回答」两列；别的格式请传 fmt=",
}


def _no_dialogue_error(report: ReadReport) -> StudyGPTError:
    """一段可用对话都没有 (0 usable dialogues): 说清看到了什么、该怎么改，一行。"""
    seen = [report.describe(r) for r, _ in report.skipped.most_common(3)]
    top = report.skipped.most_common(1)[0][0] if report.skipped else None
    hint = _HINTS.get(top, "每段对话至少要有一问一答且两句都非空 (need one user+assistant exchange)")
    if not report.skipped:
        seen, hint = ["只有空行 (only blank lines)"], "请换一个有内容的语料文件"
    return StudyGPTError(f"{report.path}: 0 段可用对话 (0 dialogues), 共 {report.lines:,} 行; "
                         f"{'; '.join(seen)} — {hint}")


def iter_dialogues(path: str | Path, fmt: str | None = None,
                   report: ReadReport | None = None) -> Iterator[Dialogue]:
    """流式读对话 (stream dialogues), 一次一段，内存与文件大小无关。

    入: path; fmt 为 'conv' / 'jsonl' / 'tsv' 或 None（按扩展名选）；report 可传一个新的
        ReadReport，读的过程中边读边填（path 和 fmt 由这里写入）。
    出: 一段段 Dialogue（偶数长度 ≥ 2 的字符串列表）。

    文件的问题（不存在、文件夹、空文件、格式不认识）在调用时立即抛 StudyGPTError，而不是等到
    第一次 next()——所以这是普通函数，里面返回生成器。读完一段可用对话都没有时也抛。
    """
    p, fmt = _check_file(path, fmt)
    report = report if report is not None else ReadReport()
    report.path, report.fmt = str(path), fmt

    def generate() -> Iterator[Dialogue]:
        for dialogue in _READERS[fmt](_read_lines(p, report), report):
            report.dialogues += 1
            report.turns += len(dialogue)
            yield dialogue
        if report.dialogues == 0:
            raise _no_dialogue_error(report)

    return generate()


def read_dialogues(path: str | Path, fmt: str | None = None) -> tuple[list[Dialogue], ReadReport]:
    """一次读完 (read everything): 出 (对话列表, 报告)。一段可用对话都没有时抛 StudyGPTError。"""
    report = ReadReport()
    dialogues = list(iter_dialogues(path, fmt, report))
    return dialogues, report


def to_messages(dialogue: Dialogue) -> list[dict]:
    """["你好", "你好呀"] → [{"role": "user", "content": "你好"}, {"role": "assistant", ...}]。"""
    return [{"role": ("user", "assistant")[i % 2], "content": text} for i, text in enumerate(dialogue)]


def split_validation(dialogues: list, fraction: float = 0.02, max_count: int = 1000, seed: int = 0):
    """从训练对话里留出一小部分做验证集（固定随机种子，可复现）。返回 (train, val)。"""
    n_val = min(max(1, int(len(dialogues) * fraction)), max_count) if len(dialogues) > 1 else 0
    order = list(range(len(dialogues)))
    random.Random(seed).shuffle(order)
    val_idx = set(order[:n_val])
    return ([d for i, d in enumerate(dialogues) if i not in val_idx], [d for i, d in enumerate(dialogues) if i in val_idx])


def read_corpus(paths: list[str], val: str | None, val_fraction: float,
                log: Callable[[str], None]) -> tuple[list[Dialogue], list[Dialogue]]:
    """一次训练的语料：读训练文件（可以多个）与验证文件，每个文件打印一行报告；没给验证文件时，
    从训练对话里留出 val_fraction（split_validation）。返回 (训练对话, 验证对话)。"""
    train = []
    for path in paths:
        dialogues, report = read_dialogues(path)
        log(report.summary())
        train += dialogues
    if val:
        held_out, report = read_dialogues(val)
        log(report.summary())
        return train, held_out
    train, held_out = split_validation(train, val_fraction)
    log(f"验证集 (validation): 从训练语料留出 {len(held_out):,} 段对话")
    return train, held_out
