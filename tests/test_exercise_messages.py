"""练习的失败信息说的是学习者的话：一个错的答案得到"位置 1 的标签应为 -100（这是用户的字…）"这样的句子。

做法：导入真正的练习测试 (docs/exercises/test_chNN.py)，把其中的 `ex` 换成一个故意写错的答案，运行测试函数，
看它抛出的 AssertionError 说了什么。
"""
import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

EXERCISES = Path(__file__).resolve().parents[1] / "docs" / "exercises"


@pytest.fixture
def exercise_test(monkeypatch):
    """import_test("test_ch03") → 那个测试模块（用参考答案导入，之后由测试换成错的答案）。"""
    monkeypatch.syspath_prepend(str(EXERCISES))
    monkeypatch.setenv("STUDYGPT_SOLUTIONS", "1")
    return importlib.import_module


def failure_message(test_function) -> str:
    """测试失败时学习者看到的第一行（pytest 在它后面再附上断言的表达式）。"""
    with pytest.raises(AssertionError) as info:
        test_function()
    return str(info.value).splitlines()[0]


def test_wrong_label_gets_position_and_reason(exercise_test, monkeypatch):
    module = exercise_test("test_ch03")
    right = exercise_test("solutions.ch03_mask")

    def learns_user_text_too(turns, tok):  # 常见错误：用户的字也学了
        ids, labels = right.render(turns, tok)
        return ids, [i if lab == -100 and tok.id_to_token[i] not in ("<|user|>", "<|assistant|>", "<|end|>") else lab
                     for i, lab in zip(ids, labels)]

    monkeypatch.setattr(module, "ex", SimpleNamespace(render=learns_user_text_too))
    message = failure_message(module.test_render_matches_studygpt)
    assert message.startswith('位置 1 的标签应为 -100（这是用户的字"你"，不学），你的是 ')


def test_wrong_shift_names_the_position(exercise_test, monkeypatch):
    module = exercise_test("test_ch03")
    no_shift = lambda ids, labels: [(i, lab) for i, lab in zip(ids, labels) if lab != -100]  # noqa: E731  忘了错开一位
    monkeypatch.setattr(module, "ex", SimpleNamespace(training_pairs=no_shift))
    message = failure_message(module.test_training_pairs_shift_by_one)
    assert message.startswith("位置 0 的(输入, 要预测的) 编号对（要预测的是下一个位置的标签 labels[t+1]）应为 ")


def test_wrong_top_p_names_the_setting_and_the_token(exercise_test, monkeypatch):
    module = exercise_test("test_ch08")

    def drops_the_crossing_token(logits, p):  # 常见错误：把让累计概率越过 p 的那个词元也去掉了
        sorted_logits, order = torch.sort(logits, descending=True)
        drop_sorted = sorted_logits.softmax(-1).cumsum(-1) >= p
        return logits.masked_fill(torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted), float("-inf"))

    monkeypatch.setattr(module, "ex", SimpleNamespace(top_p_filter=drops_the_crossing_token))
    message = failure_message(module.test_top_p_matches_studygpt)
    assert message == "top_p=0.3 时：编号 0（原始 logit 3.2）应该保留（值 3.200），你的答案把它去掉了（-inf）"


def test_wrong_temperature_says_what_temperature_does(exercise_test, monkeypatch):
    module = exercise_test("test_ch08")
    monkeypatch.setattr(module, "ex", SimpleNamespace(apply_temperature=lambda logits, t: logits * t))
    message = failure_message(module.test_temperature_matches_studygpt)
    assert message.startswith("temperature=0.5 时：编号 0（原始 logit 3.2）处理后应为 6.4000，你的是 1.6000")
    assert message.endswith("（温度：logits 除以 T）")
