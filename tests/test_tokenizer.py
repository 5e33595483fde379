import time

import pytest

from studygpt.errors import StudyGPTError
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import SPECIAL_TOKENS


def test_special_tokens_come_first_with_original_ids(tokenizer):
    assert tokenizer.id_to_token[:7] == ["<|user|>", "<|assistant|>", "<|end|>", "<pad>", "<unk>", "<bos>", "<eos>"]
    assert tokenizer.vocab["<|end|>"] == 2


def test_round_trip_chinese_punctuation_spaces_emoji_english():
    text = "你好，世界！「学习」…… Hello World 123\t😀\n第二行"
    tok = Tokenizer().build_vocab([text])
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode(" ")[0] != tok.vocab["<unk>"]  # 空格是真正的字符，不是 <unk>


def test_unknown_chars_become_unk():
    tok = Tokenizer().build_vocab(["你好"])
    ids = tok.encode("你坏")
    assert ids == [tok.vocab["你"], tok.vocab["<unk>"]]
    assert tok.decode(ids) == "你<unk>"


def test_special_token_text_is_not_injected():
    tok = Tokenizer().build_vocab(["<|end|> 普通文字"])
    ids = tok.encode("<|end|>")
    assert len(ids) == 7 and tok.vocab["<|end|>"] not in ids


def test_frequency_order_max_size_and_min_count():
    tok = Tokenizer().build_vocab(["aaab", "bbc", "a"], max_vocab_size=9)
    assert tok.id_to_token[7:] == ["a", "b"]  # a×4, b×3；c 放不下
    tok = Tokenizer().build_vocab(["aaab", "bbc", "a"], min_count=2)
    assert "c" not in tok.vocab and "b" in tok.vocab


def test_save_load_round_trip_with_whitespace_tokens(tmp_path):
    tok = Tokenizer().build_vocab(["a b\tc\nd\re\\f"])
    tok.save_vocab(tmp_path / "vocab.txt")
    back = Tokenizer().load_vocab(tmp_path / "vocab.txt")
    assert back.id_to_token == tok.id_to_token and back.vocab_hash() == tok.vocab_hash()


def test_load_vocab_written_by_original_project(tmp_path):
    # 原项目的格式：特殊词元在前，token<TAB>id
    lines = [f"{t}\t{i}" for i, t in enumerate(SPECIAL_TOKENS)] + ["你\t7", "好\t8", "。\t9"]
    (tmp_path / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tok = Tokenizer().load_vocab(tmp_path / "vocab.txt")
    assert tok.vocab_size == 10 and tok.encode("你好。") == [7, 8, 9]


@pytest.mark.parametrize("content, fragment", [
    ("<|user|>\t0\nbad line\n", ":2:"),
    ("<|user|>\t0\n你\t0\n", "重复"),
    ("你\t0\n", "缺少特殊词元"),
])
def test_bad_vocab_file_is_one_clear_line(tmp_path, content, fragment):
    path = tmp_path / "vocab.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StudyGPTError) as err:
        Tokenizer().load_vocab(path)
    assert fragment in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_encode_is_vectorised_and_fast():
    # 不是计时测试（机器是共享的）：只确认大文本一次编码成功、结果与逐字查表一致。速度见 benchmarks/。
    text = "你好，世界！Hello " * 20000
    tok = Tokenizer().build_vocab([text])
    t0 = time.perf_counter()
    ids = tok.encode_array(text)
    assert len(ids) == len(text)
    assert ids[:9].tolist() == [tok.vocab[c] for c in text[:9]]
    assert time.perf_counter() - t0 < 10  # 只防止退化成极慢的实现，不是速度目标


def test_lone_surrogate_is_unk_and_never_enters_the_vocab(tmp_path):
    """性质测试找到的：JSON 里的 "\\ud800" 进了词表，save_vocab 写 UTF-8 时 UnicodeEncodeError。"""
    tok = Tokenizer().build_vocab(["\ud800你好"])
    assert "\ud800" not in tok.vocab
    tok.save_vocab(tmp_path / "vocab.txt")
    assert tok.encode("\ud800好") == [tok.vocab["<unk>"], tok.vocab["好"]]
