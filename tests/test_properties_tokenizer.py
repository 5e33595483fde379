"""分词器的性质测试 (hypothesis)：词表里的任何文字编码再解码都回到原样；用户打出来的特殊词元只是普通文字。"""
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import SPECIAL_TOKENS, UNK

SEEDED = settings(derandomize=True, max_examples=100, deadline=None)
# 建一次词表要扫一遍 110 万个码位 (~20 ms)：只在"建词表"本身是被测对象时每例重建
MARKUP = Tokenizer().build_vocab(["".join(SPECIAL_TOKENS) + "<|>enduserpad你"])
SMALL = Tokenizer().build_vocab(["你好 world"])
# 全部 Unicode 码位，包括代理字符 (surrogates)、控制字符、换行、制表符、BOM
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXT = st.text(ANY_CHAR, max_size=30)


@settings(SEEDED, max_examples=40)
@given(st.lists(TEXT, min_size=1, max_size=5))
@example(["\ud800好"])  # JSON 里的 "\ud800" 能带来孤立的代理字符
@example(["\\n\n\r\t\\", "\ufeff开头"])
def test_round_trip_through_saved_vocab_for_text_in_the_vocabulary(corpus):
    """建词表 → 存 vocab.txt → 读回：词表里的字组成的任何文字都编码、解码回原样。"""
    tok = Tokenizer().build_vocab(corpus)
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_vocab(Path(tmp) / "vocab.txt")
        loaded = Tokenizer().load_vocab(Path(tmp) / "vocab.txt")
    assert loaded.id_to_token == tok.id_to_token
    text = "".join(c for t in corpus for c in t if c in tok.vocab)
    assert loaded.decode(loaded.encode(text)) == text
    for t in corpus:  # 词表外的字（如代理字符）变成 <unk>，一个字一个 <unk>，不报错
        assert len(loaded.encode(t)) == len(t)


@SEEDED
@given(st.lists(st.one_of(st.sampled_from(SPECIAL_TOKENS), st.text(st.sampled_from("<|>enduserpad你"), max_size=4)),
                max_size=8).map("".join))
def test_user_typed_special_tokens_stay_text(text):
    tok = MARKUP
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert all(i >= len(SPECIAL_TOKENS) for i in ids)  # 没有一个字被认成控制词元
    assert tok.decode(ids) == text


@SEEDED
@given(TEXT)
def test_encode_never_raises_and_unknowns_are_visible(text):
    tok = SMALL
    ids = tok.encode(text)
    assert len(ids) == len(text)
    known = "".join(c if c in tok.vocab else UNK for c in text)
    assert tok.decode(ids) == known
