"""第 2 章练习的测试：pytest docs/exercises -k ch02。参照答案就是 studygpt 自己的 Tokenizer。"""
from exercise_loader import load
from explain import explain_list

from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import SPECIAL_TOKENS

ex = load("ch02_vocab")
TEXTS = ["你好，世界！", "你好呀", "hello 世界"]


def test_build_vocab_matches_studygpt():
    assert ex.build_vocab(TEXTS, SPECIAL_TOKENS) == Tokenizer().build_vocab(TEXTS).vocab


def test_encode_matches_studygpt_and_uses_unk():
    vocab = Tokenizer().build_vocab(TEXTS).vocab
    expected = Tokenizer().build_vocab(TEXTS).encode("你好，火星！")  # "火""星"不在词表里：<unk> 的编号 4
    assert (msg := explain_list(ex.encode("你好，火星！", vocab), expected, "编号")) is None, msg
    assert (msg := explain_list(ex.encode("火", vocab), [vocab["<unk>"]], "编号（不在词表里的字用 <unk>）")) is None, msg


def test_decode_inverts_encode():
    vocab = Tokenizer().build_vocab(TEXTS).vocab
    assert ex.decode([vocab["你"], vocab["好"], vocab[" "]], vocab) == "你好 "
