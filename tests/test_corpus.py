"""studygpt.corpus.builtin 的测试：内置语料的形状、一致性，加法留出集不泄漏，聊天提示答得出来。

语料只读一次 (module-scoped fixture)，整个文件在 CPU 上几秒内跑完。
"""
import importlib.util
import re

import pytest

from studygpt.corpus.builtin import (
    BuiltinCorpus,
    builtin_conv_path,
    builtin_corpus,
    check_chat_reply,
    load_chat_prompts,
    write_conv,
)
from studygpt.corpus.read import read_dialogues
from studygpt.corpus.skills import addition_split, check_addition
from studygpt.errors import StudyGPTError

MAX_UTTERANCE = 60   # 每句最多字数
MAX_DIALOGUE = 170   # 每段对话最多字数：192 个 token 的窗口，每句另加 2 个特殊 token
HAN = re.compile(r"[\u4e00-\u9fff]")
ADDITION = re.compile(r"(\d+)加(\d+)等于(\d+)。")


@pytest.fixture(scope="module")
def corpus() -> BuiltinCorpus:
    return builtin_corpus(seed=0)


def first_answers(dialogues) -> dict[str, set[str]]:
    """第一句问话 → 它得到过的所有回答 (first user turn → every reply it gets)."""
    answers: dict[str, set[str]] = {}
    for d in dialogues:
        answers.setdefault(d[0], set()).add(d[1])
    return answers


# ===== 1. 自写语料 (own corpus) =====

def test_own_corpus_reads_cleanly():
    dialogues, report = read_dialogues(builtin_conv_path())
    assert report.skipped == {}, report.summary()
    raw = builtin_conv_path().read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw  # UTF-8 无 BOM, LF 换行
    assert raw.decode("utf-8").splitlines().count("E") == len(dialogues)


def test_own_corpus_shape(corpus):
    own = corpus.own
    assert len(own) >= 600
    assert sum(len(d) >= 4 for d in own) >= 80
    assert all(len(d) % 2 == 0 and len(d) >= 2 for d in own)
    assert all(u.strip() == u and 0 < len(u) <= MAX_UTTERANCE for d in own for u in d)
    assert all(sum(map(len, d)) <= MAX_DIALOGUE for d in own)
    assert len({tuple(d) for d in own}) == len(own), "有重复的对话 (duplicate dialogues)"


def test_own_corpus_is_consistent(corpus):
    """同一个开场问题永远得到同一个回答：小模型才学得会 (a tiny model needs consistency)."""
    inconsistent = {q: a for q, a in first_answers(corpus.own).items() if len(a) > 1}
    assert inconsistent == {}


def test_own_corpus_uses_full_width_punctuation(corpus):
    half_width = [u for d in corpus.own for u in d if HAN.search(u) and re.search(r"[,?!:;()]", u)]
    assert half_width == []


def test_own_corpus_covers_identity_and_llm_basics(corpus):
    text = "\n".join(u for d in corpus.own for u in d)
    for term in ["StudyGPT", "学习GPT", "token", "词表", "embedding", "注意力", "因果掩码", "Transformer",
                 "RoPE", "softmax", "交叉熵", "反向传播", "学习率", "预热", "余弦退火", "AdamW", "过拟合",
                 "温度", "top-k", "top-p", "重复惩罚", "KV cache", "困惑度", "GPU"]:
        assert term in text, term


# ===== 2. chatterbot-corpus =====

def test_chatterbot_dialogues(corpus):
    dialogues = corpus.chatterbot
    assert len(dialogues) > 100
    assert all(len(d) % 2 == 0 and len(d) >= 2 for d in dialogues)
    assert all(isinstance(u, str) and u and u == u.strip() for d in dialogues for u in d)
    assert sum(bool(HAN.search(d[0])) for d in dialogues) > 0.9 * len(dialogues)


def test_chatterbot_missing_package_is_one_actionable_line(monkeypatch):
    from studygpt.corpus import chatterbot

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "chatterbot_corpus" else real_find_spec(name, *a))
    with pytest.raises(StudyGPTError, match="pip install chatterbot-corpus"):
        chatterbot.chatterbot_dialogues()


def test_chatterbot_cleaning_rules():
    from studygpt.corpus.chatterbot import _clean_conversation

    assert _clean_conversation([" 你好 ", "嗨", "还在吗"]) == ["你好", "嗨"]  # 落单的最后一句丢掉
    assert _clean_conversation(["几岁了", 42, None, "  "]) == ["几岁了", "42"]  # 数字转字符串，空的略过
    assert _clean_conversation(["只有一句"]) == []


# ===== 3. 加法技能集 (addition skill) =====

def test_addition_heldout_never_in_train(corpus):
    def pair(text):
        a, b = map(int, re.findall(r"\d+", text)[:2])
        return frozenset((a, b))

    train_pairs = {pair(q) for q, _ in corpus.addition_train}
    heldout_pairs = {pair(q) for q, _ in corpus.addition_heldout}
    assert heldout_pairs and train_pairs.isdisjoint(heldout_pairs)  # 无序：两种顺序都不在训练集里
    assert len(train_pairs) + len(heldout_pairs) == 90 * 91 // 2    # 每个无序数对都在某一边
    assert len(heldout_pairs) == round(4095 * 0.1)


def test_addition_answers_are_correct(corpus):
    answers = [a for _, a in corpus.addition_train] + [a for _, a in corpus.addition_heldout]
    for answer in answers:
        a, b, c = map(int, ADDITION.fullmatch(answer).groups())
        assert 10 <= a <= 99 and 10 <= b <= 99 and a + b == c
    for question, answer in corpus.addition_heldout:  # 留出题用标准问法，和答案说的是同一道题
        assert question == answer.split("等于")[0] + "等于多少？"
    assert {q.endswith("=?") for q, _ in corpus.addition_train} == {True, False}  # 问法有变化


def test_addition_split_is_deterministic():
    assert addition_split(seed=1) == addition_split(seed=1)
    assert addition_split(seed=1)[1] != addition_split(seed=2)[1]
    with pytest.raises(StudyGPTError, match="heldout_fraction"):
        addition_split(heldout_fraction=1.5)


def test_check_addition():
    assert check_addition(" 23加58等于81。\n", "23加58等于81。")
    assert not check_addition("23加58等于82。", "23加58等于81。")
    assert not check_addition("等于81", "23加58等于81。")


# ===== 4. 聊天提示 (chat prompts) =====

def test_prompts_are_answered_by_the_own_corpus(corpus):
    items = load_chat_prompts()
    assert len(items) == 20 and len({it["prompt"] for it in items}) == 20
    answers = first_answers(corpus.own)
    for item in items:
        assert item["prompt"] in answers, f"{item['prompt']} 不是自写语料里某段对话的第一句"
        assert all(len(e) >= 2 for e in item["expect"]), "关键词要有区分度，不能只有一个字"
        for reply in answers[item["prompt"]]:
            assert check_chat_reply(item, reply), (item, reply)
            assert all(e in reply for e in item["expect"]), (item, reply)


def test_check_chat_reply():
    item = {"prompt": "你是谁？", "expect": ["StudyGPT", "学习GPT"]}
    assert check_chat_reply(item, "我是学习GPT。")
    assert check_chat_reply(item, "我叫StudyGPT")
    assert not check_chat_reply(item, "我是一个人。")
    assert not check_chat_reply(item, "")


# ===== 5. 组合与存盘 (combining and saving) =====

def test_train_dialogues_combines_and_copies(corpus):
    mixed = corpus.train_dialogues(own_repeat=2, chatterbot_repeat=1, addition_repeat=1)
    assert len(mixed) == 2 * len(corpus.own) + len(corpus.chatterbot) + len(corpus.addition_train)
    mixed[0].append("改动")
    assert corpus.own[0][-1] != "改动"  # 给出的是副本
    assert len(corpus.train_dialogues()) == 3 * len(corpus.own) + len(corpus.chatterbot)
    with pytest.raises(StudyGPTError, match="repeat"):
        corpus.train_dialogues(own_repeat=-1)


def test_write_conv_round_trip(tmp_path, corpus):
    path = tmp_path / "copy.conv"
    write_conv(corpus.own, path)
    assert path.read_bytes() == builtin_conv_path().read_bytes()
    write_conv([["你好", "你好呀", "吃了吗", "吃了"]], path)
    assert read_dialogues(path)[0] == [["你好", "你好呀", "吃了吗", "吃了"]]
    for bad in ([["只有一句"]], [["第一行\n第二行", "回答"]], [["", "回答"]]):
        with pytest.raises(StudyGPTError, match="第 1 段"):
            write_conv(bad, path)
