"""会打草稿、会调用工具的模型（第 16、17 章）的导出：<think> 等追加的词元导出成控制词元
（Hugging Face 的 special 词元、GGUF 的 CONTROL），对话模板认 reasoning_content、tool_calls 和 role 为 tool 的消息，
渲染出的编号与 render_conversation / render_prompt 逐个相同。需要 pip install -e ".[export]"。"""
import json

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
gguf = pytest.importorskip("gguf")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from studygpt.export.convert import export_run  # noqa: E402
from studygpt.export.vocab import (  # noqa: E402
    CHAT_TEMPLATE,
    chat_template,
    gguf_vocab,
    hf_tokenizer_files,
)
from studygpt.generation.generate import GenerationSettings  # noqa: E402
from studygpt.generation.tool_use import format_call, stream_until_end  # noqa: E402
from studygpt.model.checkpoint import load_model  # noqa: E402
from studygpt.posttrain.scratchpad import demonstration  # noqa: E402
from studygpt.posttrain.tasks import Problem  # noqa: E402
from studygpt.tokenizer.bpe import BPETokenizer  # noqa: E402
from studygpt.tokenizer.chat_format import Reply, render_conversation, render_prompt  # noqa: E402
from studygpt.tokenizer.specials import CONTROL_TOKENS, EXTRA_TOKENS, THINK, THINK_END  # noqa: E402
from tests.reasoning_helpers import (  # noqa: E402
    TOOL_PROBLEMS,
    build_reasoning_run,
    reasoning_dialogues,
    reasoning_tokenizer,
    tool_messages,
)

TOOL, THINK_REPLY = demonstration(Problem(457, 386), "tool"), demonstration(Problem(612, 199), "think")
# 单轮调用、单轮草稿、两轮（第一轮的调用留在历史里）、普通的一问一答
CONVERSATIONS = [["457加386等于多少？", TOOL], ["612加199等于多少？", THINK_REPLY],
                 ["457加386等于多少？", TOOL, "612加199等于多少？", THINK_REPLY], ["457加386等于多少？", "843。"]]


@pytest.fixture(scope="session")
def reasoning_run(tmp_path_factory):
    return build_reasoning_run(tmp_path_factory.getbasetemp() / "reasoning")


@pytest.fixture(scope="module")
def exported(reasoning_run):
    """(我们的 model, tokenizer, HF 模型, HF 分词器, GGUF 文件)。"""
    out = reasoning_run.parent / "reasoning-export"
    export_run(reasoning_run, "hf", out / "hf")
    path = export_run(reasoning_run, "gguf", out / "model.gguf")
    model, tokenizer, _ = load_model(reasoning_run, announce=False)
    return (model, tokenizer, AutoModelForCausalLM.from_pretrained(out / "hf").eval(),
            AutoTokenizer.from_pretrained(out / "hf"), path)


def hf_tokenizer(tokenizer, folder):
    """只写分词器的两个文件，再由 transformers 读回来（不需要模型）。"""
    for name, text in hf_tokenizer_files(tokenizer, max_len=256).items():
        (folder / name).write_text(text, encoding="utf-8")
    return AutoTokenizer.from_pretrained(folder)


def char_tokenizer():
    return reasoning_tokenizer(reasoning_dialogues())


def bpe_tokenizer():
    texts = [t for d in CONVERSATIONS for turn in d for t in (str(turn), getattr(turn, "reasoning", ""))]
    tokenizer = BPETokenizer.train(texts * 20 + [format_call("calculator", {"expression": "1+2"})] * 20, vocab_size=350)
    tokenizer.add_tokens(EXTRA_TOKENS)
    return tokenizer


def assert_template_matches(hf_tok, tokenizer):
    """每段对话：整段不加生成提示 = render_conversation；到最后一句用户话加生成提示 = render_prompt；
    一次调用拿到结果后加生成提示 = render_prompt(pending=…)（模型从这里接着写正文）。"""
    for turns in CONVERSATIONS:
        ids = hf_tok.apply_chat_template(tool_messages(turns), tokenize=True)["input_ids"]
        assert ids == render_conversation(turns, tokenizer)[0], turns
        prompt = hf_tok.apply_chat_template(tool_messages(turns[:-1]), add_generation_prompt=True, tokenize=True)
        assert prompt["input_ids"] == render_prompt(turns[:-2], turns[-2], tokenizer), turns
    pending = Reply("", TOOL.reasoning, TOOL.tool_call, TOOL.tool_result)
    messages = tool_messages(["457加386等于多少？", TOOL])[:-1]  # 助手（调用）、工具（结果），还没有正文
    ids = hf_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert ids == render_prompt([], "457加386等于多少？", tokenizer, pending)


@pytest.mark.parametrize("make", [char_tokenizer, bpe_tokenizer], ids=["char", "bpe"])
def test_tool_conversations_render_to_our_ids(make, tmp_path):
    tokenizer = make()
    hf_tok = hf_tokenizer(tokenizer, tmp_path)
    assert_template_matches(hf_tok, tokenizer)
    # OpenAI 的写法：arguments 是一个 JSON 字符串，原样放进去
    messages = tool_messages(["457加386等于多少？", TOOL])
    messages[1]["tool_calls"][0]["function"]["arguments"] = json.dumps({"expression": "457+386"}, separators=(",", ":"))
    assert hf_tok.apply_chat_template(messages, tokenize=True)["input_ids"] == \
        render_conversation(["457加386等于多少？", TOOL], tokenizer)[0]
    # 追加的词元是整段匹配的特殊词元：解码时和我们一样不显示
    ids = render_conversation(["612加199等于多少？", THINK_REPLY], tokenizer)[0]
    assert hf_tok.decode(ids, skip_special_tokens=True) == tokenizer.decode(ids)
    assert set(EXTRA_TOKENS) <= set(hf_tok.all_special_tokens)
    types = gguf_vocab(tokenizer).token_types
    control = {tokenizer.id_to_token[i] for i in range(tokenizer.vocab_size) if types[i] == gguf.TokenType.CONTROL}
    assert set(EXTRA_TOKENS) <= control <= CONTROL_TOKENS


def test_two_calls_or_call_with_content_is_one_clear_error(tmp_path):
    hf_tok = hf_tokenizer(char_tokenizer(), tmp_path)
    messages = tool_messages(["457加386等于多少？", TOOL])
    messages[1]["content"] = "我来算一下"
    with pytest.raises(Exception, match="只调用一个工具"):
        hf_tok.apply_chat_template(messages, tokenize=False)
    messages[1]["content"] = ""
    messages[1]["tool_calls"] *= 2
    with pytest.raises(Exception, match="只调用一个工具"):
        hf_tok.apply_chat_template(messages, tokenize=False)


def test_template_follows_what_the_vocab_has(tokenizer):
    """普通模型的模板只有用户与助手；只学过草稿的模型（sft --format think）认 reasoning_content，不认工具。"""
    assert chat_template(tokenizer) == CHAT_TEMPLATE and "tool" not in CHAT_TEMPLATE and "think" not in CHAT_TEMPLATE
    tokenizer.add_tokens([THINK, THINK_END])
    template = chat_template(tokenizer)
    assert "reasoning_content" in template and "<|tool|>" not in template and "tool_calls" not in template
    assert "<|tool|>" in chat_template(char_tokenizer())


def test_exported_hf_model_writes_the_same_call_and_gguf_marks_the_tokens_control(exported):
    model, tokenizer, hf_model, hf_tok, gguf_path = exported
    assert_template_matches(hf_tok, tokenizer)
    # HF 模型从同一个提示贪心写出同一个调用，并在调用后的 <|end|> 停下
    question = TOOL_PROBLEMS[0].question
    x = hf_tok.apply_chat_template(tool_messages([question]), add_generation_prompt=True, return_tensors="pt",
                                   return_dict=True)
    new = hf_model.generate(**x, max_new_tokens=100)[0, x["input_ids"].shape[1]:].tolist()
    ours = [t for _, t in stream_until_end(model, render_prompt([], question, tokenizer),
                                      GenerationSettings().updated(temperature=0), tokenizer)]
    assert new[-1] == tokenizer.token_id("<|end|>")
    assert hf_tok.decode(new, skip_special_tokens=False) == f"<tool_call>{TOOL.tool_call}</tool_call><|end|>"
    assert "".join(ours) == TOOL.tool_call
    with torch.no_grad():
        ids = torch.tensor([render_conversation(reasoning_dialogues()[0], tokenizer)[0]])
        assert (model(ids) - hf_model(ids).logits).abs().max() <= 1e-4
    # GGUF：追加的词元是 CONTROL，对话模板是带工具的那一个
    reader = gguf.GGUFReader(gguf_path)
    fields = {name: reader.fields[name].contents() for name in reader.fields if not name.startswith("GGUF.")}
    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    for token in EXTRA_TOKENS:
        assert types[tokens.index(token)] == gguf.TokenType.CONTROL, token
    assert fields["tokenizer.chat_template"] == chat_template(tokenizer) != CHAT_TEMPLATE
    card = (gguf_path.parent / "hf" / "README.md").read_text(encoding="utf-8")
    assert "reasoning_content" in card and '"role": "tool"' in card
