import pytest
import torch

from studygpt.errors import StudyGPTError
from studygpt.generation.generate import (
    GenerationSettings,
    SamplingConfig,
    apply_repetition_penalty,
    generate_response,
    process_logits,
    prompt_budget,
    sample,
    stream_response,
)
from studygpt.model.transformer import eval_mode
from studygpt.tokenizer.chat_format import fit_prompt
from studygpt.tokenizer.specials import SPECIAL_TOKENS
from tests.conftest import tiny_model

LOGITS = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0])


def kept(logits):
    return [i for i, v in enumerate(logits.tolist()) if v != float("-inf")]


def test_top_k_keeps_k_best():
    assert kept(process_logits(LOGITS, SamplingConfig(temperature=1.0, top_k=2), [])) == [0, 1]


def test_top_p_keeps_smallest_set_reaching_p():
    probs = LOGITS.softmax(-1)  # ≈ [0.64, 0.24, 0.09, 0.03, 0.01]
    assert probs[0] < 0.7 < probs[0] + probs[1]
    assert kept(process_logits(LOGITS, SamplingConfig(temperature=1.0, top_p=0.7), [])) == [0, 1]
    assert kept(process_logits(LOGITS, SamplingConfig(temperature=1.0, top_p=0.5), [])) == [0]


def test_temperature_sharpens_and_flattens():
    cold = process_logits(LOGITS, SamplingConfig(temperature=0.5), []).softmax(-1)
    hot = process_logits(LOGITS, SamplingConfig(temperature=2.0), []).softmax(-1)
    assert cold[0] > LOGITS.softmax(-1)[0] > hot[0]


def test_repetition_penalty_lowers_seen_tokens_both_signs():
    out = apply_repetition_penalty(LOGITS, [0, 4], 2.0)
    assert out[0] == 1.5 and out[4] == -2.0 and torch.equal(out[1:4], LOGITS[1:4])


def test_greedy_and_seeded_sampling():
    cfg = SamplingConfig(temperature=0)
    assert sample(process_logits(LOGITS, cfg, []), cfg, None) == 0
    cfg = SamplingConfig(temperature=1.0)
    draws = lambda seed: [sample(LOGITS, cfg, torch.Generator().manual_seed(seed + i)) for i in range(20)]
    assert draws(1) == draws(1) and len(set(draws(1))) > 1


def test_invalid_settings_are_clear():
    for kw in [dict(temperature=-1), dict(top_k=0), dict(top_p=1.5), dict(repetition_penalty=0)]:
        with pytest.raises(StudyGPTError):
            SamplingConfig(**kw)


def test_generate_response_reproducible_and_streaming(tokenizer):
    model = tiny_model(tokenizer.vocab_size)
    a = generate_response(model, tokenizer, "你好", "cpu", max_length=20, temperature=1.0, seed=7)
    b = generate_response(model, tokenizer, "你好", "cpu", max_length=20, temperature=1.0, seed=7)
    assert a == b and "".join(stream_response(model, tokenizer, "你好", max_length=20, temperature=1.0, seed=7)) == a
    g1 = generate_response(model, tokenizer, "你好", "cpu", max_length=20, temperature=0)
    g2 = generate_response(model, tokenizer, "你好", "cpu", max_length=20, temperature=0)
    assert g1 == g2
    assert any(generate_response(model, tokenizer, "你好", max_length=20, temperature=1.0, seed=s) for s in range(5))


def test_history_dropped_oldest_first(tokenizer):
    history = ["你好" * 10, "好" * 10, "你是谁？", "我是StudyGPT。"]
    ids = fit_prompt(tokenizer, history, "你会做什么？", budget=40)
    text = tokenizer.decode(ids, skip_special=False)
    assert "你好你好" not in text and "我是StudyGPT。" in text and len(ids) <= 40
    assert len(fit_prompt(tokenizer, [], "你" * 100, budget=30)) == 30


def test_generation_stops_at_end_token(tokenizer):
    """让输出层总是偏爱 <|end|>：第一步就停下，回答为空；偏爱别的字则一直写到 max_length。"""
    model = tiny_model(tokenizer.vocab_size)
    plain_output = model.output

    def biased(token):
        def output(hidden):
            logits = plain_output(hidden)
            logits[..., tokenizer.vocab[token]] += 100.0
            return logits
        return output

    model.output = biased("<|end|>")
    assert generate_response(model, tokenizer, "你好", max_length=20, temperature=0) == ""
    model.output = biased("好")
    assert generate_response(model, tokenizer, "你好", max_length=20, temperature=0) == "好" * 20


def test_greedy_batch_matches_one_by_one(tokenizer):
    model = tiny_model(tokenizer.vocab_size, seed=3)
    plain_output = model.output
    special = torch.tensor([t in SPECIAL_TOKENS for t in tokenizer.id_to_token])
    model.output = lambda hidden: plain_output(hidden).masked_fill(special, float("-inf"))  # 随机模型总选特殊词元，回答是空的
    questions = ["你好", "你是谁？", "今天天气怎么样？", "世界", "你好！"]
    alone = [generate_response(model, tokenizer, q, max_length=12, temperature=0) for q in questions]
    assert all(len(a) == 12 for a in alone)  # 比的是真写出来的字
    from studygpt.generation.batch_decode import greedy_batch
    assert greedy_batch(model, tokenizer, questions, max_length=12, batch_size=2) == alone


def test_greedy_batch_with_prompts_of_different_lengths_and_rows_that_end_early(tmp_path):
    """一批里的提示长短不一（不同长度的历史），有的行先说完（<|end|>）离开、有的写满：每条都与逐条生成相同。

    随机初始化的模型几乎从不写 <|end|>，所以用一个背下了 4 段对话、会停下的极小模型（export_helpers）。"""
    from studygpt.generation.batch_decode import greedy_batch
    from studygpt.model.checkpoint import load_model
    from tests.export_helpers import PROMPTS, train_tiny_run
    model, tokenizer, _ = load_model(train_tiny_run(tmp_path / "run"), announce=False)
    histories, questions = [h for h, _ in PROMPTS] * 2, [q for _, q in PROMPTS] * 2
    for max_length in (6, 40):
        alone = [generate_response(model, tokenizer, q, history=h, max_length=max_length, temperature=0)
                 for q, h in zip(questions, histories)]
        assert greedy_batch(model, tokenizer, questions, max_length=max_length, histories=histories) == alone
        assert greedy_batch(model, tokenizer, questions, max_length=max_length, histories=histories,
                            batch_size=3) == alone
    assert len({len(a) for a in alone}) > 1 and max(map(len, alone)) < 40  # 各行在不同处自己停下


def test_generation_settings_and_the_original_keywords_give_the_same_reply(tokenizer):
    model = tiny_model(tokenizer.vocab_size)
    settings = GenerationSettings(SamplingConfig(temperature=1.0, top_k=5), max_length=15, seed=2)
    typed = generate_response(model, tokenizer, "你好", settings=settings)
    assert typed == generate_response(model, tokenizer, "你好", max_length=15, temperature=1.0, top_k=5, seed=2)
    assert typed == "".join(stream_response(model, tokenizer, "你好", settings=settings))
    # 关键字改写 settings 里的同名项
    assert generate_response(model, tokenizer, "你好", settings=settings, temperature=0) == \
        generate_response(model, tokenizer, "你好", max_length=15, temperature=0, top_k=5)


def test_generation_settings_flat_names_and_validation():
    s = GenerationSettings().updated(temperature=0.0, seed=3, max_length=7)
    assert s.sampling.temperature == 0.0 and s.seed == 3 and s.max_length == 7
    assert s.as_options() == {"temperature": 0.0, "top_k": None, "top_p": None, "repetition_penalty": 1.0,
                              "max_length": 7, "seed": 3}
    assert GenerationSettings().updated(**s.as_options()) == s
    for bad in ({"tempreature": 1.0}, {"max_length": 0}, {"temperature": None}, {"top_k": 0}):
        with pytest.raises(StudyGPTError):
            GenerationSettings().updated(**bad)


def test_prompt_budget_leaves_room_for_the_reply_but_at_most_half():
    assert prompt_budget(64, 10) == 54
    assert prompt_budget(64, 100) == 32  # 回答再长也只留一半，提问至少还有一半
    assert prompt_budget(64, 32) == 32


def test_eval_mode_restores_the_previous_mode_even_after_an_error():
    model = tiny_model(10).train()
    with pytest.raises(RuntimeError):
        with eval_mode(model):
            assert not model.training
            raise RuntimeError("boom")
    assert model.training
    with eval_mode(model.eval()):
        pass
    assert not model.training


def test_positional_numbers_after_device_are_a_clear_error(tokenizer):
    model = tiny_model(tokenizer.vocab_size)
    with pytest.raises(StudyGPTError, match="关键字"):
        generate_response(model, tokenizer, "你好", "cpu", 20)


def test_fit_prompt_is_linear_in_the_number_of_turns(tokenizer):
    """滥用测试找到的：一万条消息的历史曾让 fit_prompt 每丢一轮就整段重渲染（O(轮数²)），服务器卡住几分钟。"""
    import time

    from studygpt.tokenizer.chat_format import fit_prompt
    history = ["你好", "你好！"] * 5_000
    t0 = time.process_time()
    ids = fit_prompt(tokenizer, history, "你是谁？", 40)
    assert time.process_time() - t0 < 2.0
    assert ids == fit_prompt(tokenizer, history[-8:], "你是谁？", 40)  # 和只给最近几轮一样：最近的留下
    assert len(ids) <= 40
