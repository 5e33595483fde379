"""第 16 章练习的测试：pytest docs/exercises -k ch16。参照答案是训练时真正用的 studygpt/posttrain/scratchpad.py。"""
from exercise_loader import load

from studygpt.posttrain.scratchpad import carry_scratchpad
from studygpt.posttrain.tasks import Problem, reward

ex = load("ch16_scratchpad")


def test_carry_scratchpad_matches_studygpt():
    for a, b in [(457, 386), (999, 1), (100, 100), (95, 7), (5, 5), (123, 876)]:
        got, expected = ex.carry_scratchpad(a, b), carry_scratchpad(a, b)
        assert got == expected, f"{a}+{b}：应为 {expected!r}，你的是 {got!r}（进位 +0 也写、和写两位）"


def test_final_answer_reward_ignores_the_scratchpad():
    good = "457加386等于843。"
    cases = [(good, 1.0), ("<think>个位7+6+0=13</think>" + good, 1.0),
             ("<think>胡乱写的草稿</think>" + good, 1.0), ("<think>个位0+0+0=00</think>457加386等于111。", 0.0),
             ("<think>" + good, 0.0), (good + good, 0.0), ("", 0.0)]
    for reply, expected in cases:
        got = ex.final_answer_reward(457, 386, reply)
        assert got == expected, f"回答 {reply!r}：应得 {expected}，你的是 {got}"
    assert reward(Problem(457, 386), good) == 1.0  # 与 studygpt 的 reward 一致：正文的格式相同
