"""导出到 GGUF：transformers 把文件读回来（gguf_file=…），logits 在给定容差内等于我们的；q、k 的重排就是
llama.cpp 的相邻配对 RoPE；读回来的分词器能编码中文、空格、全角标点和词表外的字。需要 pip install -e ".[export]"。"""
import pytest
import torch

pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
pytest.importorskip("accelerate")  # transformers 读 GGUF 时要用

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from studygpt.errors import StudyGPTError  # noqa: E402
from studygpt.export.convert import export_run  # noqa: E402
from studygpt.export.gguf import permute_for_llama_cpp  # noqa: E402
from studygpt.export.vocab import CHAT_TEMPLATE, SPACE_PIECE  # noqa: E402
from studygpt.generation.generate import generate_response  # noqa: E402
from studygpt.model.checkpoint import load_model  # noqa: E402
from studygpt.model.transformer import apply_rope, rope_tables  # noqa: E402
from studygpt.tokenizer.chat_format import render_conversation, render_prompt  # noqa: E402
from tests.conftest import DIALOGUES  # noqa: E402
from tests.export_helpers import PROMPTS, train_tiny_run  # noqa: E402

# 容差：相对于 logits 的最大绝对值。f32 应当逐位相同（实测差 0）；f16 每个权重有约 2^-11 的相对舍入误差；
# q8_0 每 32 个数共用一个缩放因子、8 位整数，误差更大
TOLERANCE = {"f32": 1e-6, "f16": 2e-3, "q8_0": 3e-2}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("gguf") / "run")


@pytest.fixture(scope="module")
def files(run):
    """dtype → 导出的 .gguf 文件。"""
    return {dtype: export_run(run, "gguf", run.parent / f"model-{dtype}.gguf", dtype) for dtype in TOLERANCE}


def test_permutation_turns_rotate_half_into_llama_cpp_adjacent_pairs():
    """对 rotate-half 的 q 做 RoPE，再按 permute_for_llama_cpp 重排 = 先重排，再按 llama.cpp 的方式（相邻两维一对）做 RoPE。"""
    n_head, hs, T = 2, 8, 5
    w = torch.randn(n_head * hs, 16)
    x = torch.randn(T, 16)
    cos, sin = rope_tables(hs, T, 10000.0)  # (T, hs/2)
    ours = apply_rope((x @ w.T).view(T, n_head, hs), cos[:, None], sin[:, None])  # (T, nh, hs)
    wp = torch.from_numpy(permute_for_llama_cpp(w.numpy(), n_head))
    pairs = (x @ wp.T).view(T, n_head, hs // 2, 2)  # llama.cpp：第 2i 与 2i+1 维一对
    a, b = pairs[..., 0], pairs[..., 1]
    c, s = cos[:, None], sin[:, None]
    theirs = torch.stack([a * c - b * s, a * s + b * c], dim=-1).view(T, n_head, hs)
    assert torch.allclose(torch.from_numpy(permute_for_llama_cpp(ours.reshape(T, -1).T.numpy(), n_head)).T,
                          theirs.reshape(T, -1), atol=1e-5)


def test_metadata_says_llama_character_vocab_with_byte_fallback(run, files):
    model, tokenizer, _ = load_model(run, announce=False)
    reader = gguf.GGUFReader(files["f32"])
    fields = {name: reader.fields[name].contents() for name in reader.fields if not name.startswith("GGUF.")}
    assert fields["general.architecture"] == "llama" and fields["tokenizer.ggml.model"] == "llama"
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens) == tokenizer.vocab_size + 256 == fields["llama.vocab_size"]
    assert tokens[tokenizer.vocab[" "]] == SPACE_PIECE and tokens[-256:] == [f"<0x{b:02X}>" for b in range(256)]
    assert tokens[:tokenizer.vocab_size] == [SPACE_PIECE if t == " " else t for t in tokenizer.id_to_token]  # 我们的编号不变
    assert fields["tokenizer.ggml.add_space_prefix"] is False and fields["tokenizer.ggml.add_bos_token"] is False
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.token_id("<|end|>")
    assert fields["tokenizer.ggml.unknown_token_id"] == tokenizer.token_id("<unk>")
    assert fields["tokenizer.chat_template"] == CHAT_TEMPLATE
    assert (fields["llama.attention.head_count"], fields["llama.block_count"], fields["llama.context_length"]) == \
        (model.config.n_head, model.config.n_layers, model.config.max_len)
    q8 = {t.name: t.tensor_type.name for t in gguf.GGUFReader(files["q8_0"]).tensors}
    assert q8["blk.0.attn_q.weight"] == "Q8_0" and q8["blk.0.attn_norm.weight"] == "F32"


@pytest.mark.parametrize("dtype", list(TOLERANCE))
def test_transformers_loads_the_file_and_logits_match(run, files, dtype):
    model, tokenizer, _ = load_model(run, announce=False)
    path = files[dtype]
    hf_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
    V = tokenizer.vocab_size
    for ids in [render_prompt(h, t, tokenizer) for h, t in PROMPTS] + [render_conversation(DIALOGUES[1], tokenizer)[0]]:
        x = torch.tensor([ids])
        with torch.no_grad():
            ours, theirs = model(x), hf_model(x).logits.float()
        assert (ours - theirs[..., :V]).abs().max() <= TOLERANCE[dtype] * ours.abs().max()  # 比较我们的词表
        unk = theirs[..., tokenizer.token_id("<unk>")]
        # 补的字节词元的 logit 就是 <unk> 的（同一行权重；矩阵乘法分块不同，最后几位可能不同），不会抢先
        torch.testing.assert_close(theirs[..., V:].amax(-1), unk, rtol=1e-5, atol=1e-5)


def test_tokenizer_read_back_from_gguf_encodes_any_text(run, files):
    _, tokenizer, _ = load_model(run, announce=False)
    path = files["f32"]
    hf_tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    space = tokenizer.vocab[" "]
    for text in ["你好", "今天天气不错", "Hello world", "你好，world！", "  两个空格", "龘", "😀表情"]:
        ids = hf_tok.encode(text)
        assert hf_tok.decode(ids, skip_special_tokens=True).lstrip(" ") == text.lstrip(" ")  # 包括词表外的字：拆成字节再拼回
        if all(ch in tokenizer.vocab for ch in text):
            # transformers 读 GGUF 的 llama 分词器时总在开头补一个 ▁（它不看 add_space_prefix=False；llama.cpp 看）
            assert ids in (tokenizer.encode(text), [space] + tokenizer.encode(text)), text
        else:
            assert max(ids) >= tokenizer.vocab_size  # 词表外的字 → 字节词元
    for history, text in PROMPTS[:4]:  # 对话模板以特殊词元开头，不补 ▁：与我们的提示逐个相同
        ids = hf_tok.apply_chat_template([{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                                          for i, t in enumerate(history + [text])],
                                         add_generation_prompt=True, tokenize=True)["input_ids"]
        assert ids == render_prompt(history, text, tokenizer), text


def test_existing_file_needs_force_and_force_replaces_it(run):
    path = run.parent / "again.gguf"
    path.write_text("旧的文件", encoding="utf-8")
    with pytest.raises(StudyGPTError, match="--force"):
        export_run(run, "gguf", path)
    assert path.read_text(encoding="utf-8") == "旧的文件"
    export_run(run, "gguf", path, "f16", force=True)
    assert gguf.GGUFReader(path).fields["general.architecture"].contents() == "llama"
    assert not [p.name for p in run.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_llama_cpp_gives_our_greedy_reply(run, files):
    """只在装了 llama-cpp-python 时运行（它要从源码编译，.ci/run 不装它，见 docs/export.md）。"""
    llama_cpp = pytest.importorskip("llama_cpp")
    model, tokenizer, _ = load_model(run, announce=False)
    llm = llama_cpp.Llama(model_path=str(files["f32"]), n_ctx=model.config.max_len, verbose=False)
    for history, text in PROMPTS[:3]:
        prompt = render_prompt(history, text, tokenizer)
        out = []
        for token in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
            if token == tokenizer.token_id("<|end|>") or len(out) == 40:
                break
            out.append(token)
        assert tokenizer.decode(out) == generate_response(model, tokenizer, text, history=history,
                                                          temperature=0, max_length=40)


def test_llama_cpp_tokenizer_and_chat_template_match_ours(run, files):
    """llama.cpp 自己的分词器与 GGUF 里的对话模板：词表内的文字编号逐个相同，特殊词元按名字认出，
    create_chat_completion（用文件里的 Jinja 模板）的贪心回答与我们的相同。只在装了 llama-cpp-python 时运行。"""
    llama_cpp = pytest.importorskip("llama_cpp")
    model, tokenizer, _ = load_model(run, announce=False)
    llm = llama_cpp.Llama(model_path=str(files["f32"]), n_ctx=model.config.max_len, verbose=False)
    for history, text in PROMPTS:
        theirs = llm.tokenize(text.encode(), add_bos=False, special=False)
        if all(ch in tokenizer.vocab for ch in text):
            assert theirs == tokenizer.encode(text), text
        else:  # 词表外的字：我们记作 <unk>，llama.cpp 拆成 UTF-8 字节词元（编号排在我们的词表之后）
            assert max(theirs) >= tokenizer.vocab_size, text
            continue
        prompt = render_prompt(history, text, tokenizer)
        assert llm.tokenize(tokenizer.decode(prompt, skip_special=False).encode(), add_bos=False, special=True) == prompt
    for history, text in PROMPTS[:3]:
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(history + [text])]
        reply = llm.create_chat_completion(messages=messages, temperature=0, max_tokens=40)["choices"][0]["message"]
        assert reply["content"] == generate_response(model, tokenizer, text, history=history, temperature=0,
                                                     max_length=40), text
