"""读语料的性质测试 (property-based tests, hypothesis)：任意字节、任意行都只会得到清楚的错误，报告里的数加起来等于输入。

hypothesis 按策略 (strategy) 生成成百上千个输入，找到反例时自动缩小 (shrink) 成最短的那个。
settings(derandomize=True)：每次运行生成同样的例子，测试结果可复现，CI 上不会时好时坏。
"""
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from studygpt.corpus.read import ReadReport, iter_dialogues
from studygpt.errors import StudyGPTError

SEEDED = settings(derandomize=True, max_examples=100, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
# 行的零件：格式里有意义的字符多给一些机会，再混进任意字符（含非法代理字符由字节策略负责）
PIECES = st.sampled_from(["M", "E", "M ", "\t", " ", "\r", "{", "}", "\"", "你好", "\\", "\x00", "\u2028", "\ufeff"])
LINE = st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=6).map("".join)


def read(data: bytes, fmt: str) -> tuple[list, ReadReport]:
    """把字节写进临时文件再读；0 段可用对话时的 StudyGPTError 也返回报告。空文件另有测试，这里跳过。"""
    assume(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"corpus.{fmt}"
        path.write_bytes(data)
        report = ReadReport()
        dialogues = []
        try:
            for d in iter_dialogues(path, report=report):
                dialogues.append(d)
        except StudyGPTError as err:
            assert str(err) and "\n" not in str(err)  # 一句话，不是 traceback
        return dialogues, report


def physical_lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def check_common(data: bytes, dialogues: list, report: ReadReport) -> None:
    """三种格式共有的账：行数、对话数、句数；每段对话偶数长、句子非空。"""
    assert report.lines == physical_lines(data)
    assert report.dialogues == len(dialogues)
    assert report.turns == sum(len(d) for d in dialogues)
    for d in dialogues:
        assert len(d) >= 2 and len(d) % 2 == 0 and all(t and t == t.strip() for t in d)


@SEEDED
@given(st.binary(max_size=300))
@example(b"\xff\xfe\n")
@example(b"[" * 100_000)  # 极深的嵌套：json 会 RecursionError
def test_arbitrary_bytes_only_raise_the_clear_error(data):
    for fmt in ("conv", "jsonl", "tsv"):
        dialogues, report = read(data, fmt)
        check_common(data, dialogues, report)


def texts(data: bytes) -> list[str]:
    """和读取器一样切行、去 BOM 与 \\r，但不丢空行：测试自己的独立账本。"""
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    return [raw.decode("utf-8", errors="replace").rstrip("\r") for raw in lines]


def nonblank(data: bytes) -> list[str]:
    return [t for t in texts(data) if t and not t.isspace()]


@SEEDED
@given(st.lists(LINE, min_size=1, max_size=30))
@example(["E", "M 你好", "M", "M 在吗", "M 在", "E", "E", "M 落单"])
def test_conv_counts_add_up(lines):
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    dialogues, report = read(data, "conv")
    check_common(data, dialogues, report)
    rows = nonblank(data)
    is_m = [t[0] == "M" and (len(t) == 1 or t[1].isspace()) for t in rows]
    is_e = [t[0] == "E" and t[1:].strip() == "" for t in rows]
    # 每一行不是 M、不是 E，就记一次 bad_line
    assert report.skipped["bad_line"] == sum(not m and not e for m, e in zip(is_m, is_e))
    # 每个 M 行：要么留在对话里，要么被记为 empty_utterance / unanswered_turn（一次最多丢一对）
    dropped = sum(is_m) - report.turns
    noted = report.skipped["empty_utterance"] + report.skipped["unanswered_turn"]
    assert noted <= dropped <= 2 * report.skipped["empty_utterance"] + report.skipped["unanswered_turn"]
    # 每个 E 开始的一段：至少交出一段对话，或者记一次 empty_dialogue
    assert report.dialogues + report.skipped["empty_dialogue"] >= sum(is_e)


ROLE = st.sampled_from(["user", "assistant", "system", "tool", 3, None])
MESSAGE = st.fixed_dictionaries({"role": ROLE, "content": st.one_of(st.text(max_size=8), st.none(), st.integers())})
JSON_LINE = st.one_of(
    st.fixed_dictionaries({"messages": st.lists(MESSAGE, max_size=6)}).map(json.dumps),
    st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                 lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                 max_leaves=8).map(json.dumps),
    LINE,
)


@SEEDED
@given(st.lists(JSON_LINE, min_size=1, max_size=12))
@example(['{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "好"}]}'])
def test_jsonl_every_line_is_used_or_counted(lines):
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    dialogues, report = read(data, "jsonl")
    check_common(data, dialogues, report)
    # 每个非空行：要么交出对话、要么落进 bad_json / bad_role / empty_dialogue 之一
    rows = len(nonblank(data))
    whole_line = report.skipped["bad_json"] + report.skipped["bad_role"] + report.skipped["empty_dialogue"]
    assert whole_line <= rows <= whole_line + report.dialogues
    for d in dialogues:  # 读出来的文字总能写成 UTF-8（代理字符 surrogate 写不进 vocab.txt）
        for t in d:
            t.encode("utf-8")


@SEEDED
@given(st.lists(LINE, min_size=1, max_size=30))
def test_tsv_dialogues_plus_bad_lines_equal_lines(lines):
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    dialogues, report = read(data, "tsv")
    check_common(data, dialogues, report)
    assert report.dialogues + report.skipped["bad_tsv"] == len(nonblank(data))
