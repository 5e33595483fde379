"""考试 (evaluation/exam.py)：判分规则、对话的组成，以及多轮考试把前几轮的问题和模型自己的回答放进历史。"""
from collections import Counter

import studygpt.evaluation.exam as exam
from studygpt.evaluation.exam import (
    Question,
    addition_questions,
    build_conversations,
    chat_questions,
    conversation_exam,
)
from tests.conftest import tiny_model


def test_keyword_and_exact_questions_are_scored_differently():
    greet = Question("你好", ("你好", "嗨"))
    assert greet.check("嗨！") and greet.check("你好呀") and not greet.check("再见")
    add = Question("1加2等于多少？", ("1加2等于3。",), exact=True)
    assert add.check(" 1加2等于3。\n") and not add.check("1加2等于3。对吧")


def test_built_in_question_pools():
    assert len(chat_questions()) == 20 and all(not q.exact for q in chat_questions())
    sums = addition_questions([("10加11等于多少？", "10加11等于21。")])
    assert sums == [Question("10加11等于多少？", ("10加11等于21。",), exact=True)]


def test_conversations_mix_both_pools_and_are_reproducible():
    pools = [[Question(f"聊{i}", ("x",)) for i in range(5)], [Question(f"算{i}", ("y",), True) for i in range(5)]]
    convs = build_conversations(pools, count=50, turns=5, seed=0)
    assert len(convs) == 50 and all(len(c) == 5 for c in convs)
    kinds = Counter(q.exact for c in convs for q in c)
    assert 75 <= kinds[True] <= 175 and kinds[True] + kinds[False] == 250
    assert convs == build_conversations(pools, count=50, turns=5, seed=0)


def test_each_turn_sees_the_earlier_questions_and_the_models_own_replies(monkeypatch):
    seen = []

    def fake_greedy(model, tokenizer, questions, max_length, histories):
        seen.append([list(h) for h in histories])
        return [f"答{q}" if q != "错" else "不对" for q in questions]

    monkeypatch.setattr(exam, "greedy_batch", fake_greedy)
    convs = [[Question("甲", ("答甲",)), Question("错", ("答错",)), Question("乙", ("答乙",))]]
    results = conversation_exam(None, None, convs)
    assert seen == [[[]], [["甲", "答甲"]], [["甲", "答甲", "错", "不对"]]]
    assert [r.correct for r in results] == [[True], [False], [True]]
    assert [r.score() for r in results] == ["100.0% (1/1)", "0.0% (0/1)", "100.0% (1/1)"]


def test_conversation_exam_runs_on_a_real_model(tokenizer):
    model = tiny_model(tokenizer.vocab_size)
    convs = build_conversations([[Question("你好", ("你好",))], [Question("你是谁？", ("StudyGPT",))]],
                                count=3, turns=4)
    results = conversation_exam(model, tokenizer, convs, max_length=8)
    assert len(results) == 4 and all(len(r.replies) == 3 and 0 <= r.accuracy <= 1 for r in results)
