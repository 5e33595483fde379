"""用字节级 BPE 分词器训练的检查点也能导出：Hugging Face 文件夹与 GGUF（`gpt2` 词表）。

和字符级的测试（test_export_hf.py、test_export_gguf.py）一样的验证：transformers 加载回来的 logits、
对话模板的编号、纯文本的编号、贪心回答都与我们的相同。需要 pip install -e ".[export]"。"""
import json

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
gguf = pytest.importorskip("gguf")
pytest.importorskip("accelerate")  # transformers 读 GGUF 时要用

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from studygpt.cli.parser import main as cli_main  # noqa: E402
from studygpt.export.convert import export_run  # noqa: E402
from studygpt.export.vocab import CHAT_TEMPLATE  # noqa: E402
from studygpt.generation.generate import generate_response  # noqa: E402
from studygpt.model.checkpoint import load_model  # noqa: E402
from studygpt.tokenizer.bpe import BPETokenizer  # noqa: E402
from studygpt.tokenizer.chat_format import render_conversation, render_prompt  # noqa: E402
from studygpt.tokenizer.specials import SPECIAL_TOKENS  # noqa: E402
from tests.conftest import DIALOGUES  # noqa: E402
from tests.export_helpers import PROMPTS, messages, train_tiny_run  # noqa: E402

# 分词器的训练文字：这 4 段对话（常见词会合并），再加几句别的；"龘"、😀 之外的生僻字只能拆成字节
TEXTS = [t for d in DIALOGUES for t in d] * 30 + ["今天天气很好，我们去公园散步吧。", "你好 😀 world"] * 20
PLAIN = ["你好", "今天天气不错", "Hello world", "你好，world！", "  两个空格\t和制表符\n换行", "龘鬱", "😀表情"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(我们的 model, 分词器, 训练目录)，并已导出 run/../hf 与 run/../model.gguf。"""
    tmp = tmp_path_factory.mktemp("bpe")
    run = train_tiny_run(tmp / "run", tokenizer=BPETokenizer.train(TEXTS, vocab_size=400))
    assert cli_main(["export", str(run), "--to", "hf", str(tmp / "hf")]) == 0
    export_run(run, "gguf", tmp / "model.gguf")
    model, tokenizer, _ = load_model(run, announce=False)
    assert isinstance(tokenizer, BPETokenizer)
    return model, tokenizer, tmp


@pytest.fixture(scope="module")
def hf(exported):
    folder = exported[2] / "hf"
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def from_gguf(exported):
    folder = exported[2]
    return (AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf").eval(),
            AutoTokenizer.from_pretrained(folder, gguf_file="model.gguf"))


def max_logit_diff(model, tokenizer, hf_model) -> float:
    """各种提示和一整段多轮对话上，我们与对方的 logits 最大绝对差。"""
    sequences = [render_prompt(h, t, tokenizer) for h, t in PROMPTS] + [render_conversation(DIALOGUES[1], tokenizer)[0]]
    diff = 0.0
    for ids in sequences:
        x = torch.tensor([ids])
        with torch.no_grad():
            theirs = hf_model(x).logits
            assert theirs.shape[-1] == tokenizer.vocab_size  # 字节级 BPE 不补字节词元
            diff = max(diff, (model(x) - theirs).abs().max().item())
    return diff


def assert_same_ids(tokenizer, hf_tok) -> None:
    """对话模板 (add_generation_prompt) 的编号与 render_prompt 相同；纯文本的编号与我们的 encode 相同、解码回原文
    （中文、空格、生僻字与表情：不在词表里的字拆成字节，两边拆法一样；没有 ▁ 前缀）。"""
    for history, text in PROMPTS:
        ids = hf_tok.apply_chat_template(messages(history, text), add_generation_prompt=True, tokenize=True)["input_ids"]
        assert ids == render_prompt(history, text, tokenizer), (history, text)
    for text in PLAIN:
        assert hf_tok.encode(text) == tokenizer.encode(text), text
        assert hf_tok.decode(hf_tok.encode(text)) == text


# ===== Hugging Face =====
def test_hf_tokenizer_json_is_our_byte_level_bpe(exported, hf):
    _, tokenizer, tmp = exported
    written = json.loads((tmp / "hf" / "tokenizer.json").read_text(encoding="utf-8"))
    ours = json.loads(tokenizer.hf.to_str())
    assert written["model"]["type"] == "BPE" and written["model"]["vocab"] == ours["model"]["vocab"]
    assert written["model"]["merges"] == ours["model"]["merges"] and written["pre_tokenizer"]["type"] == "ByteLevel"
    assert {t["content"]: t["id"] for t in written["added_tokens"] if t["special"]} == \
        {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    assert hf[1].is_fast and hf[1].chat_template == CHAT_TEMPLATE
    assert hf[0].config.vocab_size == tokenizer.vocab_size  # 字节级 BPE 不补字节词元


def test_hf_logits_chat_template_and_plain_text_equal_ours(exported, hf):
    model, tokenizer, _ = exported
    hf_model, hf_tok = hf
    assert max_logit_diff(model, tokenizer, hf_model) <= 1e-4
    assert_same_ids(tokenizer, hf_tok)
    for dialogue in DIALOGUES:  # 不加生成提示：整段对话与训练时渲染的一样
        ids = hf_tok.apply_chat_template(messages(dialogue[:-1], dialogue[-1]), tokenize=True)["input_ids"]
        assert ids == render_conversation(dialogue, tokenizer)[0]


def test_hf_greedy_generate_gives_our_reply(exported, hf):
    model, tokenizer, _ = exported
    hf_model, hf_tok = hf
    stopped = 0
    for history, text in PROMPTS:
        ours = generate_response(model, tokenizer, text, history=history, temperature=0, max_length=40)
        x = hf_tok.apply_chat_template(messages(history, text), add_generation_prompt=True, return_tensors="pt",
                                       return_dict=True)
        new = hf_model.generate(**x, max_new_tokens=40)[0, x["input_ids"].shape[1]:].tolist()
        stopped += new[-1] == tokenizer.token_id("<|end|>")
        assert hf_tok.decode(new, skip_special_tokens=True) == ours, (history, text)
    assert stopped >= 3, "模型应当在多数提示上自己说完（<|end|>），才测得到两边在同一处停下"


# ===== GGUF：gpt2 词表 =====
def test_gguf_metadata_is_a_gpt2_byte_level_vocab(exported):
    _, tokenizer, tmp = exported
    reader = gguf.GGUFReader(tmp / "model.gguf")
    fields = {name: reader.fields[name].contents() for name in reader.fields if not name.startswith("GGUF.")}
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "gpt-2"
    tokens = fields["tokenizer.ggml.tokens"]
    assert tokens == [tokenizer.hf.id_to_token(i) for i in range(tokenizer.vocab_size)] and \
        len(tokens) == fields["llama.vocab_size"] == tokenizer.vocab_size  # 编号不变、不补字节词元
    types = fields["tokenizer.ggml.token_type"]
    assert types[:7] == [int(gguf.TokenType.CONTROL)] * 7 and set(types[7:]) == {int(gguf.TokenType.NORMAL)}
    merges = json.loads(tokenizer.hf.to_str())["model"]["merges"]
    assert fields["tokenizer.ggml.merges"] == [" ".join(m) if isinstance(m, list) else m for m in merges]
    assert "tokenizer.ggml.scores" not in fields
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.token_id("<|end|>")
    assert fields["tokenizer.chat_template"] == CHAT_TEMPLATE


def test_gguf_read_back_by_transformers_gives_our_logits_and_ids(exported, from_gguf):
    model, tokenizer, _ = exported
    hf_model, hf_tok = from_gguf
    assert max_logit_diff(model, tokenizer, hf_model) <= 1e-6  # f32：应当逐位相同
    assert_same_ids(tokenizer, hf_tok)


def test_llama_cpp_reads_the_bpe_gguf(exported):
    """llama.cpp 的字节级 BPE（gpt2 词表 + gpt-2 预分词）：纯文本的编号、贪心回答与我们的相同。
    只在装了 llama-cpp-python 时运行（它要从源码编译，.ci/run 不装它，见 docs/export.md）。"""
    llama_cpp = pytest.importorskip("llama_cpp")
    model, tokenizer, folder = exported
    llm = llama_cpp.Llama(model_path=str(folder / "model.gguf"), n_ctx=model.config.max_len, verbose=False)
    for text in PLAIN:
        assert llm.tokenize(text.encode(), add_bos=False, special=False) == tokenizer.encode(text), text
    for history, text in PROMPTS[:3]:
        messages_ = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(history + [text])]
        reply = llm.create_chat_completion(messages=messages_, temperature=0, max_tokens=40)["choices"][0]["message"]
        assert reply["content"] == generate_response(model, tokenizer, text, history=history, temperature=0,
                                                     max_length=40), text
