"""studygpt.corpus.read 的测试：每种坏数据一个测试，既看读出的对话，也看报告里的计数和行号。

小文件都写在 tmp_path 里；需要 BOM、CRLF、非法 UTF-8 时直接写字节 (bytes)。
最后两个测试读 ../shared/data 下的真实语料，没有就 skip。
"""
import inspect
import json
from pathlib import Path

import pytest

from studygpt.corpus.read import ReadReport, iter_dialogues, read_dialogues, to_messages
from studygpt.errors import StudyGPTError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write(tmp_path: Path, data: str | bytes, name: str = "x.conv") -> Path:
    """把 str 或 bytes 原样写进 tmp_path/name（str 用 UTF-8，不做换行转换）。"""
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def read(tmp_path: Path, data: str | bytes, name: str = "x.conv", fmt=None):
    return read_dialogues(write(tmp_path, data, name), fmt)


# ===== .conv: 正常文件 (happy path) =====

def test_conv_happy_path(tmp_path):
    dialogues, report = read(tmp_path, "E\nM 你好\nM 你好呀\nE\nM 吃了吗\nM 吃了\nM 吃的什么\nM 面条\n")
    assert dialogues == [["你好", "你好呀"], ["吃了吗", "吃了", "吃的什么", "面条"]]
    assert (report.fmt, report.lines, report.dialogues, report.turns) == ("conv", 8, 2, 6)
    assert report.skipped == {} and report.examples == []
    assert "nothing skipped" in report.summary()


# ===== .conv: 每种坏数据一个测试 (one test per malformed case) =====

def test_conv_bom_is_stripped(tmp_path):
    # BOM 紧贴在第一行的 M 前面：不去掉的话这一行会变成 bad_line
    dialogues, report = read(tmp_path, b"\xef\xbb\xbfM a\nM b\n")
    assert dialogues == [["a", "b"]]
    assert report.skipped == {} and report.lines == 2


def test_conv_crlf_line_endings(tmp_path):
    dialogues, report = read(tmp_path, b"E\r\nM \xe4\xbd\xa0\xe5\xa5\xbd\r\nM ok\r\nE\r\n\r\nM x\r\nM y\r\n")
    assert dialogues == [["你好", "ok"], ["x", "y"]]
    assert report.skipped == {} and report.lines == 7


def test_conv_blank_lines_are_ignored_not_errors(tmp_path):
    dialogues, report = read(tmp_path, "\nE\n\nM a\n   \nM b\n\t\n\n")
    assert dialogues == [["a", "b"]]
    assert report.skipped == {} and report.lines == 8


@pytest.mark.parametrize("empty", ["M", "M ", "M   "])
def test_conv_empty_user_turn_drops_its_reply_and_splits(tmp_path, empty):
    text = f"E\nM a\nM b\n{empty}\nM 没人问的回答\nM c\nM d\n"
    dialogues, report = read(tmp_path, text)
    # 第 4 行的用户话是空的：它的回答（第 5 行）一起丢掉，前后各成一段
    assert dialogues == [["a", "b"], ["c", "d"]]
    assert report.skipped == {"empty_utterance": 1}
    assert report.examples == [(4, "empty_utterance", "没人问的回答")]


def test_conv_empty_assistant_turn_drops_the_question_and_splits(tmp_path):
    dialogues, report = read(tmp_path, "E\nM a\nM b\nM 没人回答的问题\nM \nM c\nM d\nM e\nM f\n")
    assert dialogues == [["a", "b"], ["c", "d", "e", "f"]]
    assert report.skipped == {"empty_utterance": 1}
    assert report.examples == [(5, "empty_utterance", "没人回答的问题")]


def test_conv_lines_neither_m_nor_e_are_counted_first_five_with_excerpt(tmp_path):
    bad = [f"坏行{i}" for i in range(6)] + ["x" * 100]
    text = "E\nM a\n" + "\n".join(bad) + "\nM b\nMaybe not an utterance\nE extra\n"
    dialogues, report = read(tmp_path, text)
    # 坏行跳过后 M 行仍然交替：a 的回答是 b；"Maybe…" 和 "E extra" 也是坏行
    assert dialogues == [["a", "b"]]
    assert report.skipped == {"bad_line": 9}
    assert report.examples == [(3 + i, "bad_line", f"坏行{i}") for i in range(5)]
    assert "bad_line: 第 3, 4, 5, 6, 7, … 行" in report.summary()
    long_line = ReadReport()
    long_line.note("bad_line", 1, "x" * 100)
    assert long_line.examples == [(1, "bad_line", "x" * 40 + "…")]


def test_conv_without_closing_e_and_text_before_first_e(tmp_path):
    dialogues, report = read(tmp_path, "M 开头没有E\nM 也算一段\nE\nM 最后一段\nM 没有收尾的E")
    assert dialogues == [["开头没有E", "也算一段"], ["最后一段", "没有收尾的E"]]
    assert report.skipped == {} and report.lines == 5


def test_conv_odd_number_of_turns_drops_the_unanswered_last_turn(tmp_path):
    dialogues, report = read(tmp_path, "E\nM a\nM b\nM 没有回复\nE\nM c\nM d\n")
    assert dialogues == [["a", "b"], ["c", "d"]]
    assert report.skipped == {"unanswered_turn": 1}
    assert report.examples == [(4, "unanswered_turn", "没有回复")]


def test_conv_invalid_utf8_is_replaced_and_counted(tmp_path):
    dialogues, report = read(tmp_path, b"E\nM \xff\xfe hi\nM ok\nM \xe4\xbd\nM \xe5\xa5\xbd\n")
    assert dialogues == [["\ufffd\ufffd hi", "ok", "\ufffd", "好"]]
    assert report.skipped == {"invalid_utf8": 2}
    assert [(n, r) for n, r, _ in report.examples] == [(2, "invalid_utf8"), (4, "invalid_utf8")]


def test_conv_tabs_and_backslashes_kept_verbatim(tmp_path):
    dialogues, report = read(tmp_path, "E\nM   a\tb\\n c  \nM x\\y\\\n")
    assert dialogues == [["a\tb\\n c", "x\\y\\"]]
    assert report.skipped == {}


def test_conv_dialogue_with_no_usable_exchange_is_not_yielded(tmp_path):
    dialogues, report = read(tmp_path, "E\nM 只有一句\nE\nE\nM \nM 空问题的回答\nE\nM a\nM b\n")
    assert dialogues == [["a", "b"]]
    assert report.skipped == {"unanswered_turn": 1, "empty_dialogue": 3, "empty_utterance": 1}
    # 空对话记在打开它的 E 行上：第 1 行（只有一句）、第 3 行（连着两个 E）、第 4 行（只有空问题）
    assert [n for n, r, _ in report.examples if r == "empty_dialogue"] == [1, 3, 4]
    assert report.dialogues == 1 and report.turns == 2


# ===== 格式选择 (format choice) =====

def test_unknown_extension_asks_for_fmt_and_fmt_overrides(tmp_path):
    path = write(tmp_path, "你好\t你好呀\n", "pairs.txt")
    with pytest.raises(StudyGPTError, match=r"pairs\.txt.*fmt="):
        read_dialogues(path)
    assert read_dialogues(path, fmt="tsv")[0] == [["你好", "你好呀"]]
    with pytest.raises(StudyGPTError, match="fmt='csv'"):
        read_dialogues(path, fmt="csv")


# ===== JSONL =====

def jsonl(*objects) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\n" for o in objects)


def msgs(*pairs) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in pairs]}


def test_jsonl_happy_path_skips_system_and_unanswered(tmp_path):
    text = jsonl(msgs(("system", "你是助手"), ("user", "你好"), ("assistant", " 你好呀 ")),
                 msgs(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"), ("user", "没回")))
    dialogues, report = read(tmp_path, text, "chat.jsonl")
    assert dialogues == [["你好", "你好呀"], ["a", "b", "c", "d"]]
    assert report.fmt == "jsonl" and (report.dialogues, report.turns) == (2, 6)
    assert report.skipped == {"system_message": 1, "unanswered_turn": 1}
    assert [(n, r) for n, r, _ in report.examples] == [(1, "system_message"), (2, "unanswered_turn")]
    assert to_messages(dialogues[0]) == msgs(("user", "你好"), ("assistant", "你好呀"))["messages"]


def test_jsonl_bad_lines_are_skipped_with_line_numbers(tmp_path):
    good = msgs(("user", "q"), ("assistant", "a"))
    text = jsonl(good,
                 "{not json",                                               # 2 bad_json
                 [good],                                                    # 3 顶层不是对象
                 {"messages": "hi"},                                        # 4 messages 不是列表
                 {"messages": [{"role": "user", "content": 5}]},           # 5 content 不是字符串
                 msgs(("assistant", "a"), ("user", "q")),                  # 6 bad_role: 助手先说
                 msgs(("user", "q"), ("user", "q2")),                      # 7 bad_role: 不交替
                 msgs(("user", "q"), ("bot", "a")),                        # 8 bad_role: 未知角色
                 {"messages": []},                                          # 9 empty_dialogue
                 good)
    dialogues, report = read(tmp_path, text, "chat.json")
    assert dialogues == [["q", "a"], ["q", "a"]]
    assert report.skipped == {"bad_json": 4, "bad_role": 3, "empty_dialogue": 1}
    assert [n for n, r, _ in report.examples if r == "bad_json"] == [2, 3, 4, 5]
    assert [e for e in report.examples if e[1] == "bad_role"][0] == (6, "bad_role", "roles: assistant, user")
    assert [n for n, r, _ in report.examples if r == "bad_role"] == [6, 7, 8]


# ===== TSV =====

def test_tsv_happy_path_and_bad_lines(tmp_path):
    text = "你好\t你好呀\n\n只有一列\n三\t列\t了\n\t空问题\n 问 \t 答 \n"
    dialogues, report = read(tmp_path, text, "pairs.tsv")
    assert dialogues == [["你好", "你好呀"], ["问", "答"]]
    assert report.fmt == "tsv" and (report.lines, report.dialogues, report.turns) == (6, 2, 4)
    assert report.skipped == {"bad_tsv": 3}
    assert [n for n, _, _ in report.examples] == [3, 4, 5]


# ===== 整个文件用不了：一行 StudyGPTError (whole-file errors) =====

def assert_one_line_naming(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(StudyGPTError) as err:
        read_dialogues(tmp_path / "nope.conv")
    assert "file not found" in assert_one_line_naming(err, tmp_path / "nope.conv")
    with pytest.raises(StudyGPTError) as err:
        read_dialogues(tmp_path)
    assert "directory" in assert_one_line_naming(err, tmp_path)


def test_empty_file(tmp_path):
    path = write(tmp_path, b"")
    with pytest.raises(StudyGPTError) as err:
        read_dialogues(path)
    assert "empty file" in assert_one_line_naming(err, path)


def test_no_usable_dialogue_says_what_was_seen(tmp_path):
    path = write(tmp_path, "".join(f"第{i}行普通文本\n" for i in range(120)))
    with pytest.raises(StudyGPTError) as err:
        read_dialogues(path)
    message = assert_one_line_naming(err, path)
    assert "0 dialogues" in message and "120 行既不是 M 也不是 E" in message
    assert "is this a .conv file?" in message and "第 1, 2, 3, 4, 5, … 行" in message

    path = write(tmp_path, jsonl("[1, 2]", "oops"), "bad.jsonl")
    with pytest.raises(StudyGPTError) as err:
        read_dialogues(path)
    assert "one JSON object per line" in assert_one_line_naming(err, path)

    path = write(tmp_path, "\n  \n", "blank.conv")
    with pytest.raises(StudyGPTError) as err:
        read_dialogues(path)
    assert "only blank lines" in assert_one_line_naming(err, path)


# ===== 流式读取 (streaming) =====

def test_iter_dialogues_streams_and_fills_report_as_it_goes(tmp_path):
    path = write(tmp_path, "E\nM a\nM b\nE\nM c\nM d\n")
    report = ReadReport()
    stream = iter_dialogues(path, report=report)
    assert inspect.isgenerator(stream)
    assert next(stream) == ["a", "b"]
    # 第一段要读到第 4 行的 E 才知道它结束了，所以此时读了 4 行，还没读第二段
    assert (report.path, report.fmt, report.dialogues, report.lines) == (str(path), "conv", 1, 4)
    assert list(stream) == [["c", "d"]] and report.turns == 4
    # 文件本身的问题在调用时就报，不用等到第一次 next()
    with pytest.raises(StudyGPTError):
        iter_dialogues(tmp_path / "missing.conv")


def test_summary_names_reasons_and_line_numbers(tmp_path):
    _, report = read(tmp_path, "E\nM a\nM b\n坏行\nM 落单\n")
    summary = report.summary()
    assert "1 段对话 (dialogues)" in summary and "2 句 (turns)" in summary
    assert "1 行既不是 M 也不是 E (bad_line: 第 4 行)" in summary
    assert "unanswered_turn: 第 5 行" in summary


# ===== 真实语料 (real corpora in ../shared/data) =====

def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"没有共享语料 {path} (shared corpus absent; only present next to the repo)")
    return path


def test_real_kdconv_dev_450(tmp_path):
    dialogues, report = read_dialogues(shared("kdconv_dev_450.conv"))
    assert len(dialogues) == 450 == report.dialogues
    assert all(len(d) >= 2 and len(d) % 2 == 0 for d in dialogues)


def test_real_subtitles_read_and_every_e_is_accounted_for():
    stats = json.loads(shared("stats.json").read_text(encoding="utf-8"))
    files = sorted(shared("subtitles").glob("*.conv"))
    assert files
    for path in files:
        dialogues, report = read_dialogues(path)
        print(report.summary())  # pytest -s 时能看到每个文件跳过了什么
        assert dialogues and all(len(d) % 2 == 0 for d in dialogues)
        # 字幕里没有空句：每个 E 要么成为一段对话，要么记为 empty_dialogue
        assert report.dialogues + report.skipped["empty_dialogue"] == stats[f"subtitles/{path.name}"]


# ===== 性质测试 (tests/test_properties_data.py) 找到的问题的回归测试 =====

def test_deeply_nested_json_line_is_bad_json_not_a_recursion_error(tmp_path):
    good = json.dumps({"messages": [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "好"}]})
    dialogues, report = read(tmp_path, "[" * 100_000 + "\n" + good, "x.jsonl")
    assert len(dialogues) == 1 and report.skipped["bad_json"] == 1


def test_json_lone_surrogate_is_replaced_and_counted_not_kept(tmp_path):
    line = '{"messages": [{"role": "user", "content": "\\ud800你好"}, {"role": "assistant", "content": "好"}]}'
    dialogues, report = read(tmp_path, line, "x.jsonl")
    assert dialogues == [["\ufffd你好", "好"]] and report.skipped["invalid_utf8"] == 1
