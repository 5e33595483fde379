"""第 16、17 章的零件：草稿与工具的词元、Reply 的渲染与拆回、逐位草稿、安全计算器、工具调用。"""
from __future__ import annotations

import json
from fractions import Fraction

import pytest
import torch

from studygpt.generation.calculator import CalculatorError, calculate, format_number
from studygpt.generation.tool_use import format_call, parse_call, run_tool
from studygpt.model.transformer import DialogueModel
from studygpt.posttrain.scratchpad import carry_scratchpad, demonstration
from studygpt.posttrain.tasks import Problem, format_reward, reward
from studygpt.tokenizer.bpe import BPETokenizer
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import (
    IGNORE_INDEX,
    Reply,
    parse_reply,
    render_conversation,
    render_prompt,
)
from studygpt.tokenizer.specials import EXTRA_TOKENS, SPECIAL_TOKENS, THINK, TOOL

TEXT = "457加386等于多少？个位十百+=，0123456789。{}\":,abcdefghijklmnopqrstuvwxyz"


def char_tokenizer() -> Tokenizer:
    tok = Tokenizer().build_vocab([TEXT])
    tok.add_tokens(EXTRA_TOKENS)
    return tok


def bpe_tokenizer() -> BPETokenizer:
    tok = BPETokenizer.train([TEXT] * 20, vocab_size=300)
    tok.add_tokens(EXTRA_TOKENS)
    return tok


def test_add_tokens_appends_and_keeps_old_ids(tmp_path):
    tok = Tokenizer().build_vocab(["你好"])
    before = list(tok.id_to_token)
    added = tok.add_tokens([THINK, "{", "你", THINK])
    assert added == [THINK, "{"]
    assert tok.id_to_token[: len(before)] == before
    assert tok.encode("<think>") != [tok.token_id(THINK)]  # 用户打出的写法仍是普通字符
    tok.save(tmp_path)
    again = Tokenizer().load_vocab(tmp_path / "vocab.txt")
    assert again.id_to_token == tok.id_to_token
    with pytest.raises(Exception, match="单个字符"):
        tok.add_tokens(["ab"])


def test_token_id_of_missing_extra_says_how_to_fix():
    tok = Tokenizer().build_vocab(["你好"])
    with pytest.raises(Exception, match="sft --format"):
        tok.token_id(THINK)


def test_resize_vocab_keeps_rows_and_output():
    model = DialogueModel(vocab_size=20, d_model=16, n_head=2, n_layers=1, max_len=16)
    x = torch.tensor([[1, 2, 3]])
    before = model(x)
    model.resize_vocab(25)
    after = model(x)
    assert after.shape[-1] == 25 and model.config.vocab_size == 25
    assert torch.allclose(after[..., :20], before, atol=1e-6)
    with pytest.raises(Exception, match="只能变大"):
        model.resize_vocab(10)


@pytest.mark.parametrize("make", [char_tokenizer, bpe_tokenizer], ids=["char", "bpe"])
def test_reply_round_trips_through_both_tokenizers(make):
    tok = make()
    reply = Reply("457加386等于843。", reasoning=carry_scratchpad(457, 386))
    ids, labels = render_conversation(["457加386等于多少？", reply], tok)
    start = ids.index(tok.token_id("<|assistant|>")) + 1
    assert parse_reply(ids[start:], tok) == reply
    # 草稿和正文都学，角色词元不学
    assert labels[start - 1] == IGNORE_INDEX and labels[start] == tok.token_id(THINK)
    assert tok.decode(ids[start:]) == reply.reasoning + reply.content  # 默认不显示控制词元


@pytest.mark.parametrize("make", [char_tokenizer, bpe_tokenizer], ids=["char", "bpe"])
def test_tool_result_is_given_not_learned(make):
    tok = make()
    reply = demonstration(Problem(457, 386), "tool")
    ids, labels = render_conversation(["457加386等于多少？", reply], tok)
    tool = ids.index(tok.token_id(TOOL))
    result_end = tool + 1 + len(tok.encode("843")) + 2  # 结果、<|end|>、<|assistant|>
    assert all(lab == IGNORE_INDEX for lab in labels[tool:result_end])
    assert labels[tool - 1] != IGNORE_INDEX  # 调用之后的 <|end|> 要学：模型要学会"调用完就停下等结果"
    start = ids.index(tok.token_id("<|assistant|>")) + 1
    first = parse_reply(ids[start:], tok)
    assert json.loads(first.tool_call) == {"name": "calculator", "arguments": {"expression": "457+386"}}
    pending = Reply("", first.reasoning, first.tool_call, run_tool(first.tool_call))
    assert render_prompt([], "457加386等于多少？", tok, pending) == ids[:result_end]


def test_parse_reply_never_raises_on_any_order():
    tok = char_tokenizer()
    extras = [tok.token_id(t) for t in EXTRA_TOKENS + SPECIAL_TOKENS]
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        ids = torch.randint(0, tok.vocab_size, (20,), generator=g).tolist()
        ids[::3] = [extras[i % len(extras)] for i in ids[::3]]
        assert isinstance(parse_reply(ids, tok), Reply)


def test_carry_scratchpad_is_fixed_width_and_right():
    assert carry_scratchpad(457, 386) == "个位7+6+0=13，十位5+8+1=14，百位4+3+1=08"
    assert carry_scratchpad(999, 1) == "个位9+1+0=10，十位9+0+1=10，百位9+0+1=10"
    lengths = {len(carry_scratchpad(a, b)) for a in range(100, 1000, 37) for b in range(100, 1000, 41)}
    assert lengths == {32}  # 每道三位数题的草稿一样长


def test_format_reward_is_gamed_but_exact_reward_is_not():
    p = Problem(457, 386)
    honest = demonstration(p, "think")
    cheat = Reply("457加386等于111。", reasoning="个位0+0+0=00，十位0+0+0=00，百位0+0+0=00")
    assert format_reward(p, honest) == format_reward(p, cheat) == 1.0
    assert reward(p, honest.content) == 1.0 and reward(p, cheat.content) == 0.0


@pytest.mark.parametrize("expression, value", [
    ("457+386", 843), ("2*(3+4)", 14), ("10÷4", Fraction(5, 2)), ("（1+2）×3", 9), ("-3--3", 0), ("8-2-1", 5),
    ("100/10/5", 2), (" 7 ", 7)])
def test_calculator_values(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize("hostile", [
    "9" * 10000, "__import__('os').system('echo hi')", "(" * 10000 + "1" + ")" * 10000, "1/0", "(1+2", "1+", "",
    "2**3", "1e5", "٣+1", "-" * 100 + "1", "(" * 30 + "1" + ")" * 30, "99999999999999999999*" * 6 + "9"])
def test_calculator_hostile_inputs_give_one_error(hostile):
    with pytest.raises(CalculatorError):
        calculate(hostile)


@pytest.mark.parametrize("arguments", [
    '{"name": "calculator", "arguments": {"expression": "' + "9" * 10000 + '"}}',
    '{"name": "calculator", "arguments": {"expression": "__import__(\'os\')"}}',
    '{"name": "calculator", "arguments": {"expression": "' + "(" * 10000 + '"}}',
    '{"name": "calculator", "arguments": {"expression": "1/0"}}',
    '{"name": "calculator", "arguments": "not json"}',
    'not json at all', '[' * 100000, '{"name": "rm"}', '{"name": "calculator", "arguments": {"expr": 1}}',
    '{"name": "calculator", "arguments": [1, 2]}'])
def test_hostile_tool_calls_become_error_messages(arguments):
    result = run_tool(arguments)
    assert result.startswith("错误")


def test_tool_call_shape_and_string_arguments():
    call = format_call("calculator", {"expression": "1+2"})
    assert parse_call(call) == ("calculator", {"expression": "1+2"})
    openai_style = json.dumps({"name": "calculator", "arguments": json.dumps({"expression": "6÷4"})})
    assert run_tool(openai_style) == "1.5"
    assert format_number(Fraction(1, 3)) == "0.333333"
