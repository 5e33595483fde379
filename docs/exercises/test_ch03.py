"""第 3 章练习的测试：pytest docs/exercises -k ch03。参照答案是 studygpt 自己的 render_conversation。"""
from exercise_loader import load
from explain import explain_list, explain_render

from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import render_conversation

ex = load("ch03_mask")
TURNS = ["你好", "你好！", "1加1", "等于2。"]
TOK = Tokenizer().build_vocab(TURNS)


def test_render_matches_studygpt():
    mine = ex.render(TURNS, TOK)
    assert (msg := explain_render(mine, render_conversation(TURNS, TOK), TOK.id_to_token, TOK.vocab)) is None, msg


def test_learned_tokens_are_exactly_the_replies_and_their_end():
    ids, labels = render_conversation(TURNS, TOK)
    expected = ["你", "好", "！", "<|end|>", "等", "于", "2", "。", "<|end|>"]
    assert (msg := explain_list(ex.learned_tokens(ids, labels, TOK), expected, "参与损失的词元")) is None, msg


def test_training_pairs_shift_by_one():
    ids, labels = render_conversation(TURNS[:2], TOK)  # <|user|>你好<|end|><|assistant|>你好！<|end|>
    v = TOK.vocab
    expected = [(v["<|assistant|>"], v["你"]), (v["你"], v["好"]), (v["好"], v["！"]), (v["！"], v["<|end|>"])]
    what = "(输入, 要预测的) 编号对（要预测的是下一个位置的标签 labels[t+1]）"
    assert (msg := explain_list(ex.training_pairs(ids, labels), expected, what)) is None, msg
