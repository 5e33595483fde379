"""多轮链 (corpus/chains.py)：每段对话恰好用一次、整段不拆，链不超过窗口，段数在 1..max_parts 之间。"""
from collections import Counter

import pytest

from studygpt.corpus.chains import chain_dialogues, dialogue_tokens
from studygpt.errors import StudyGPTError

SINGLE = [[f"{a}加{b}等于多少？", f"{a}加{b}等于{a + b}。"] for a in range(10, 40) for b in range(10, 20)]
MULTI = [["什么是注意力？", "注意力让每个词元看前文。", "那因果掩码呢？", "因果掩码挡住后文。"]] * 5


def exchanges(dialogues):
    return Counter((d[i], d[i + 1]) for d in dialogues for i in range(0, len(d), 2))


def test_every_dialogue_is_used_once_and_multi_turn_ones_stay_whole():
    chains = chain_dialogues(SINGLE + MULTI, max_tokens=192, max_parts=5, seed=0)
    assert exchanges(chains) == exchanges(SINGLE + MULTI)
    follow_ups = [c.index("那因果掩码呢？") for c in chains for _ in range(c.count("那因果掩码呢？"))]
    assert len(follow_ups) == 5
    for chain in chains:
        for i, text in enumerate(chain):
            if text == "那因果掩码呢？":  # 追问前面紧挨着它自己的上文
                assert chain[i - 2:i] == ["什么是注意力？", "注意力让每个词元看前文。"]


def test_chains_fit_the_window_and_have_one_to_max_parts_parts():
    chains = chain_dialogues(SINGLE, max_tokens=100, max_parts=4, seed=1)
    assert all(dialogue_tokens(c) <= 100 for c in chains)
    assert {len(c) // 2 for c in chains} == {1, 2, 3, 4}   # 每个加法题 24 个词元，4 段正好放得下 100


def test_overlong_dialogue_gets_its_own_chain_and_seed_makes_it_reproducible():
    long = ["问" * 50, "答" * 50]
    chains = chain_dialogues(SINGLE[:20] + [long], max_tokens=80, seed=2)
    assert long in chains
    assert chains == chain_dialogues(SINGLE[:20] + [long], max_tokens=80, seed=2)
    assert chains != chain_dialogues(SINGLE[:20] + [long], max_tokens=80, seed=3)


def test_dialogue_tokens_counts_role_and_end_tokens():
    assert dialogue_tokens(["你好", "你好！"]) == (2 + 2) + (3 + 2)


@pytest.mark.parametrize("kwargs", [{"max_tokens": 0}, {"max_tokens": 10, "max_parts": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(StudyGPTError):
        chain_dialogues(SINGLE, **kwargs)
