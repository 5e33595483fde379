"""编译的逐词解码 (generation/fast_decode.py) 必须与普通路径算出同样的东西，且整段生成只编译一次。

编译一次要十几秒，所以这里所有测试共用同一种模型结构：dynamo 的缓存按形状复用编好的内核。
"""
import pytest
import torch
from torch._dynamo.utils import counters

from studygpt.errors import StudyGPTError
from studygpt.generation.batch_decode import greedy_batch
from studygpt.generation.fast_decode import compile_decoding, vector_matrix
from studygpt.generation.generate import (
    SamplingConfig,
    decode_one_token,
    generate_tokens,
    prefill,
)
from studygpt.model.transformer import KVCache
from tests.conftest import tiny_model

MAX_LEN = 24
WARM_UP = SamplingConfig(temperature=1.0, top_k=20, repetition_penalty=1.3)  # 各测试预热时都编这一种"形状"


def twin_models(vocab_size: int):
    """同一组权重的两个模型：一个走普通路径，一个编译解码。"""
    plain = tiny_model(vocab_size, max_len=MAX_LEN).eval()
    fast = tiny_model(vocab_size, max_len=MAX_LEN).eval()
    return plain, compile_decoding(fast, WARM_UP)


def test_vector_matrix_is_a_linear_layer():
    x, w = torch.randn(1, 7), torch.randn(5, 7)
    torch.testing.assert_close(vector_matrix(x, w), torch.nn.functional.linear(x, w))


def test_compiled_step_matches_plain_path_up_to_max_len(tokenizer):
    plain, fast = twin_models(tokenizer.vocab_size)
    assert all(p.is_contiguous() for p in fast.parameters())  # 编译路径要行优先的权重
    for a, b in zip(plain.parameters(), fast.parameters()):
        assert torch.equal(a, b)  # 换存储顺序不改数值
    caches = [KVCache(m.config, 1, "cpu", torch.float32) for m in (plain, fast)]
    prompt = [1, 5, 9, 4]
    torch.testing.assert_close(prefill(fast, prompt, caches[1]), prefill(plain, prompt, caches[0]))
    graphs_before = None
    for i in range(MAX_LEN - len(prompt)):  # 一直写到缓存满：最后一步交给普通路径
        token = 7 + i % 11
        expected, got = decode_one_token(plain, token, caches[0]), decode_one_token(fast, token, caches[1])
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        graphs_before = graphs_before or counters["stats"]["unique_graphs"]  # 第一步时编译（只出 logits 的这条是懒编译）
    assert caches[1].length == MAX_LEN
    torch.testing.assert_close(caches[1].k[0], caches[0].k[0])
    assert counters["stats"]["unique_graphs"] == graphs_before  # 之后一步都没重编


@pytest.mark.parametrize("cfg", [
    WARM_UP,                                                             # 与 compile_decoding 预热时同一种"形状"
    SamplingConfig(temperature=0.0, repetition_penalty=1.5),             # 贪心
    SamplingConfig(temperature=0.8, top_p=0.9),                          # top-p，没有惩罚
])
def test_decode_and_sample_in_one_kernel_matches_the_plain_path(tokenizer, cfg):
    plain, fast = twin_models(tokenizer.vocab_size)
    prompt = [1, 8, 3]
    runs = [list(generate_tokens(m, prompt, MAX_LEN, cfg, tokenizer, seed=3, top_n=3)) for m in (plain, fast)]
    assert [s.token_id for s in runs[0]] == [s.token_id for s in runs[1]] and len(runs[0]) > 1
    for a, b in zip(*runs):  # 选中词元的概率与候选表也一样（编译后求和顺序不同，只差舍入误差）
        assert abs(a.prob - b.prob) < 1e-5 and [t for t, _ in a.top] == [t for t, _ in b.top]


def test_new_sampling_numbers_do_not_recompile(tokenizer):
    _, fast = twin_models(tokenizer.vocab_size)
    list(generate_tokens(fast, [1, 8, 3], 10, WARM_UP, tokenizer, seed=0))
    graphs = counters["stats"]["unique_graphs"]
    for t, penalty in [(0.5, 1.0), (1.7, 2.0)]:  # 温度与惩罚是编译进去的输入，不是常数
        list(generate_tokens(fast, [1, 8, 3], 10, SamplingConfig(temperature=t, top_k=20, repetition_penalty=penalty),
                             tokenizer, seed=0))
    assert counters["stats"]["unique_graphs"] == graphs


def test_batches_and_an_empty_cache_fall_back_to_the_plain_path(tokenizer):
    plain, fast = twin_models(tokenizer.vocab_size)
    caches = [KVCache(m.config, 1, "cpu", torch.float32) for m in (plain, fast)]  # 没有 prefill 就直接解码
    torch.testing.assert_close(decode_one_token(fast, 3, caches[1]), decode_one_token(plain, 3, caches[0]))
    questions = ["你好", "你是谁？", "今天天气怎么样？"]
    assert greedy_batch(fast, tokenizer, questions, max_length=8) == greedy_batch(plain, tokenizer, questions,
                                                                                  max_length=8)


def test_missing_compiler_is_a_clear_error(tokenizer, monkeypatch):
    monkeypatch.setattr("studygpt.hardware.shutil.which", lambda name: None)
    with pytest.raises(StudyGPTError, match="g\\+\\+"):
        compile_decoding(tiny_model(tokenizer.vocab_size, max_len=MAX_LEN))
