"""对话格式的性质测试 (hypothesis)：标签恰好是助手的词元；窗口从不从半句开始；什么都不悄悄丢掉。"""
from collections import Counter

from hypothesis import example, given, settings
from hypothesis import strategies as st

from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import (
    IGNORE_INDEX,
    render_conversation,
    render_windows,
)
from studygpt.tokenizer.specials import ASSISTANT, END, SPECIAL_TOKENS, USER

SEEDED = settings(derandomize=True, max_examples=150, deadline=None)
TOK = Tokenizer().build_vocab(["你好吗？我很好。abc <|end|>"])
USER_ID, ASSISTANT_ID, END_ID = (TOK.token_id(t) for t in (USER, ASSISTANT, END))
UTTERANCE = st.text(st.sampled_from("你好吗？我很好。abc <|end|>"), min_size=1, max_size=12)
DIALOGUE = st.integers(1, 5).flatmap(lambda n: st.lists(UTTERANCE, min_size=2 * n, max_size=2 * n))


def assistant_positions(ids: list[int]) -> list[bool]:
    """独立地数一遍：<|assistant|> 之后、直到并包括它的 <|end|> 的位置是助手的回答。"""
    inside, out = False, []
    for i in ids:
        out.append(inside)
        if i == ASSISTANT_ID:
            inside = True
        elif i == END_ID:
            inside = False
    return out


@SEEDED
@given(DIALOGUE)
def test_labels_are_exactly_the_assistant_tokens(turns):
    ids, labels = render_conversation(turns, TOK)
    assert len(ids) == len(labels)
    for i, lab, is_reply in zip(ids, labels, assistant_positions(ids)):
        assert (lab != IGNORE_INDEX) == is_reply
        assert lab in (IGNORE_INDEX, i)
    # 用户打的 "<|end|>" 只是字符：控制词元只出现在程序放的位置上
    assert ids.count(END_ID) == len(turns) and ids.count(USER_ID) == len(turns) // 2


@SEEDED
@given(DIALOGUE, st.integers(2, 80))
@example(["你好", "很好"], 2)
@example(["你好吗你好吗", "我很好"], 3)
def test_windows_start_at_a_turn_fit_and_drop_nothing(turns, max_length):
    stats = Counter()
    windows = render_windows(turns, TOK, max_length, stats)
    assert stats["windows"] == len(windows)
    for ids, labels in windows:
        assert ids[0] == USER_ID, "窗口从半句话开始"
        assert 0 < len(ids) <= max_length and len(ids) == len(labels)
        for i, lab, is_reply in zip(ids, labels, assistant_positions(ids)):
            assert lab in (IGNORE_INDEX, i) and (lab == IGNORE_INDEX or is_reply)
    # 每一问一答都在某个窗口里（按 <|user|> 数）；没被截断时拼起来正好是整段对话
    assert sum(ids.count(USER_ID) for ids, _ in windows) == len(turns) // 2
    if stats["truncated_exchanges"] == 0:
        full = render_conversation(turns, TOK)
        assert [i for ids, _ in windows for i in ids] == full[0]
        assert [lab for _, labels in windows for lab in labels] == full[1]


@SEEDED
@given(st.lists(UTTERANCE, min_size=1, max_size=7).filter(lambda t: len(t) % 2 == 1))
def test_unanswered_last_turn_is_counted_not_silently_dropped(turns):
    stats = Counter()
    windows = render_windows(turns, TOK, 64, stats)
    assert stats["unanswered_turns"] == 1
    assert sum(ids.count(USER_ID) for ids, _ in windows) == len(turns) // 2


def test_special_tokens_are_first_in_this_vocab():
    assert TOK.id_to_token[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS
