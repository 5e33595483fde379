"""第 12 章练习的测试：pytest docs/exercises -k ch12。参照是 studygpt 的 BPETokenizer 与 tokenizer_lab.token_stats。"""
from exercise_loader import load
from explain import explain_list

from studygpt.tokenizer.bpe import BPETokenizer
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.lab import token_stats

ex = load("ch12_bpe")
TEXTS = ["你好，世界！", "你好呀，今天天气很好。", "hello 世界", "你好你好你好"] * 10


def test_most_common_pair_counts_neighbours_and_breaks_ties_by_first_seen():
    assert ex.most_common_pair([1, 2, 3, 1, 2]) == (1, 2)
    assert ex.most_common_pair([7, 8, 9, 8, 9, 7, 8]) == (7, 8), "(7, 8) 与 (8, 9) 都出现 2 次，(7, 8) 先出现"
    assert ex.most_common_pair([4, 4, 4]) == (4, 4)


def test_merge_pair_is_one_bpe_step():
    assert (msg := explain_list(ex.merge_pair([1, 2, 3, 1, 2], (1, 2), 9), [9, 3, 9], "合并 (1, 2) → 9 之后")) is None, msg
    assert (msg := explain_list(ex.merge_pair([5, 5, 5], (5, 5), 6), [6, 5], "合并 (5, 5) → 6 之后（不重叠）")) is None, msg
    # 在 UTF-8 字节上反复合并最常见的一对：词元越来越少，展开回去仍是原来的文字
    data = list("你好你好，你好呀".encode())
    table = {b: bytes([b]) for b in range(256)}
    for new_id in range(256, 262):
        pair = ex.most_common_pair(data)
        data = ex.merge_pair(data, pair, new_id)
        table[new_id] = table[pair[0]] + table[pair[1]]
    assert len(data) < len("你好你好，你好呀".encode()) and b"".join(table[i] for i in data).decode() == "你好你好，你好呀"


def test_chars_per_token_matches_studygpt():
    char = Tokenizer().build_vocab(TEXTS)
    bpe = BPETokenizer.train(TEXTS, vocab_size=300)
    for tok in (char, bpe):
        expected = token_stats(tok, TEXTS)["chars_per_token"]
        assert abs(ex.chars_per_token(TEXTS, tok.encode) - expected) < 1e-9, f"{tok!r}: 应为 {expected:.4f}"
    assert ex.chars_per_token(TEXTS, bpe.encode) > 1.0 and ex.chars_per_token([], bpe.encode) == 0.0
