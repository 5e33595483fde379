from collections import Counter

from studygpt.tokenizer.chat_format import (
    IGNORE_INDEX,
    render_conversation,
    render_prompt,
    render_windows,
    show_mask,
)


def learned_text(tok, ids, labels):
    return "".join(tok.id_to_token[i] for i, lab in zip(ids, labels) if lab != IGNORE_INDEX)


def test_render_format_and_labels_multi_turn(tokenizer):
    turns = ["你是谁？", "我是StudyGPT。", "你会做什么？", "我会聊天。"]
    ids, labels = render_conversation(turns, tokenizer)
    text = tokenizer.decode(ids, skip_special=False)
    assert text == "<|user|>你是谁？<|end|><|assistant|>我是StudyGPT。<|end|><|user|>你会做什么？<|end|><|assistant|>我会聊天。<|end|>"
    assert len(ids) == len(labels)
    # 学的正好是两句助手内容加各自的 <|end|>
    assert learned_text(tokenizer, ids, labels) == "我是StudyGPT。<|end|>我会聊天。<|end|>"
    assert all(lab == i for i, lab in zip(ids, labels) if lab != IGNORE_INDEX)


def test_user_typed_special_token_is_plain_text(tokenizer):
    ids, labels = render_conversation(["<|end|>", "好"], tokenizer)
    assert ids.count(tokenizer.vocab["<|end|>"]) == 2  # 只有结构里的两个


def test_prompt_ends_with_assistant_tag(tokenizer):
    ids = render_prompt(["你好", "你好！"], "你是谁？", tokenizer)
    assert tokenizer.decode(ids, skip_special=False).endswith("<|user|>你是谁？<|end|><|assistant|>")


def test_windows_hold_whole_exchanges(tokenizer):
    turns = ["你好" * 5, "好" * 10] * 6  # 每个一问一答 10+2 + 10+2 = 24 个词元
    stats = Counter()
    windows = render_windows(turns, tokenizer, max_length=50, stats=stats)
    assert [len(w[0]) for w in windows] == [48, 48, 48]
    for ids, _ in windows:
        assert ids[0] == tokenizer.vocab["<|user|>"]  # 每个窗口都从用户的话开始
    assert stats["windows"] == 3 and stats["truncated_exchanges"] == 0


def test_overlong_exchange_is_truncated_not_dropped(tokenizer):
    stats = Counter()
    windows = render_windows(["你" * 100, "好" * 100], tokenizer, max_length=40, stats=stats)
    assert len(windows) == 1 and len(windows[0][0]) == 40
    ids, labels = windows[0]
    assert ids[0] == tokenizer.vocab["<|user|>"] and tokenizer.vocab["<|assistant|>"] in ids
    assert learned_text(tokenizer, ids, labels).startswith("好")
    assert stats["truncated_exchanges"] == 1


def test_show_mask_marks_learned_tokens(tokenizer):
    ids, labels = render_conversation(["你好", "你好！"], tokenizer)
    assert show_mask(ids, labels, tokenizer) == "<|user|>你好<|end|><|assistant|>[你][好][！][<|end|>]"


# ===== 性质测试 (tests/test_properties_chat_format.py) 找到的问题的回归测试 =====

def test_truncation_with_tiny_max_length_never_overflows_the_window(tokenizer):
    """max_length=2、3 时问题的预算是 1 个词元：[-0:] 曾经把整句问题都留下，窗口超长。"""
    for max_length in (2, 3):
        windows = render_windows(["你好你好你好", "你好"], tokenizer, max_length)
        assert all(len(ids) <= max_length for ids, _ in windows)


def test_unanswered_last_turn_is_counted(tokenizer):
    stats = Counter()
    windows = render_windows(["你好", "你好！", "在吗"], tokenizer, 64, stats)
    assert len(windows) == 1 and stats["unanswered_turns"] == 1
