"""`studygpt chat` 的多轮历史：通过管道喂几轮输入，检查哪些轮次给了模型、哪些被丢掉，以及 /reset。"""
import re

import pytest

from studygpt.generation.chat import HELP
from tests.conftest import DIALOGUES
from tests.test_cli import run, write_conv

MAX_LEN, MAX_REPLY = 64, 8          # 模型的上下文窗口与 --max-length：提示最多 64 − 8 = 56 个词元
BUDGET = MAX_LEN - MAX_REPLY
QUESTIONS = ["请问今天我们要学习什么内容呢", "注意力机制到底是怎样工作的", "为什么要用因果掩码挡住后文",
             "位置编码又是做什么用的呢？"]  # 每句 13–14 个字：三轮历史加一句问题一定放不下 56 个词元
ROW = re.compile(r"第 (\d+) 轮 \[(\S+) [a-z]+\] (\d+) 个词元 · 您: (.*) \| AI: ")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chat")
    data = write_conv(tmp / "data.conv", DIALOGUES * 20)
    result = run("train", "--data", str(data), "--out", str(tmp / "run"), "--max-steps", "4", "--d-model", "32",
                 "--n-layers", "1", "--max-len", str(MAX_LEN), "--seq-len", str(MAX_LEN), "--batch-size", "4", "--no-progress")
    assert result.returncode == 0, result.stderr
    return tmp / "run"


def history_blocks(out: str) -> list[list[tuple[int, str, int, str]]]:
    """每次 /history 的输出 → [(轮次, 标记, 词元数, 用户的话), ...]。"""
    blocks = []
    for block in out.split("（对话历史")[1:]:
        blocks.append([(int(n), mark, int(tokens), user) for n, mark, tokens, user in ROW.findall(block)])
    return blocks


def test_chat_keeps_the_latest_turns_that_fit_and_reset_clears(small_run):
    stdin = "\n".join(["/set temperature 0", *QUESTIONS, "/history", "/reset", "/history", "你好", "/history",
                       "exit"]) + "\n"
    result = run("chat", str(small_run), "--max-length", str(MAX_REPLY), stdin=stdin)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert sum(line.startswith("AI: ") for line in out.splitlines()) == len(QUESTIONS) + 1
    assert out.count("历史超出了上下文窗口") == 1       # 第一次丢弃时提示一次，不是每轮都提示

    before_reset, after_reset, after_one_more = history_blocks(out)
    assert [n for n, *_ in before_reset] == [1, 2, 3, 4]
    assert [user for *_, user in before_reset] == QUESTIONS
    marks = [mark for _, mark, *_ in before_reset]
    assert marks[-1] == "上一句"
    seen = marks.count("看到")
    dropped = marks.count("已丢弃")
    assert dropped >= 1 and marks[:-1] == ["已丢弃"] * dropped + ["看到"] * seen  # 丢的总是最早的几轮
    # 看到的几轮连同最后那句问题（<|user|>…<|end|><|assistant|>）放得下；再多一轮就放不下了
    prompt = len(QUESTIONS[-1]) + 3
    seen_tokens = sum(tokens for _, mark, tokens, _ in before_reset if mark == "看到")
    oldest_seen = before_reset[dropped - 1][2]
    assert prompt + seen_tokens <= BUDGET < prompt + seen_tokens + oldest_seen

    assert "（已清空对话历史）" in out and after_reset == []
    assert "对话历史是空的" in out
    assert [(n, mark, user) for n, mark, _, user in after_one_more] == [(1, "上一句", "你好")]


def test_help_says_what_the_quickstart_model_can_and_cannot_do(small_run):
    out = run("chat", str(small_run), stdin="/help\nexit\n").stdout
    assert HELP in out
    for phrase in ["23加58等于多少？", "中国的首都是哪里？", "Hello, who are you?", "studygpt train --data"]:
        assert phrase in out
