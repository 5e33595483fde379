"""导出到 Hugging Face：transformers 加载回来的模型与我们的逐位相同（logits、对话模板、贪心回答）；
以及 `studygpt export` 对坏输入的处理（一句话、非零退出、不留半成品）。需要 pip install -e ".[export]"。"""
import ast
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from studygpt.cli.parser import main as cli_main  # noqa: E402
from studygpt.errors import StudyGPTError  # noqa: E402
from studygpt.export.vocab import gguf_vocab, hf_tokenizer_files  # noqa: E402
from studygpt.generation.generate import generate_response  # noqa: E402
from studygpt.model.checkpoint import load_model  # noqa: E402
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import render_conversation, render_prompt  # noqa: E402
from studygpt.tokenizer.specials import SPECIAL_TOKENS  # noqa: E402
from tests.conftest import DIALOGUES  # noqa: E402
from tests.export_helpers import PROMPTS, messages, train_tiny_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(我们的 model, tokenizer, HF 模型, HF 分词器, 导出文件夹)。训练目录里放一份 report.md，看模型卡摘了它。"""
    tmp = tmp_path_factory.mktemp("hf")
    run = train_tiny_run(tmp / "run")
    (run / "report.md").write_text("# 报告\n\n## 数据 (data)\n\n| 项 | 值 |\n|---|---|\n| 对话 | 4 |\n\n"
                                   "## 回答样例 (sample replies)\n\n不摘这一段\n", encoding="utf-8")
    out = tmp / "hf"
    assert cli_main(["export", str(run), "--to", "hf", str(out)]) == 0
    model, tokenizer, _ = load_model(run, announce=False)
    return model, tokenizer, AutoModelForCausalLM.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out), out


def test_folder_has_llama_config_weights_tokenizer_and_model_card(exported):
    model, tokenizer, hf_model, hf_tok, out = exported
    c = model.config
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    assert (config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"],
            config["num_hidden_layers"], config["intermediate_size"], config["vocab_size"],
            config["max_position_embeddings"]) == (c.d_model, c.n_head, c.n_head, c.head_size, c.n_layers,
                                                   c.ffn_hidden, c.vocab_size, c.max_len)
    assert config["rms_norm_eps"] == c.norm_eps and config["rope_parameters"]["rope_theta"] == c.rope_base
    assert config["tie_word_embeddings"] is True and config["hidden_act"] == "silu"
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == \
        tuple(tokenizer.token_id(t) for t in ("<bos>", "<|end|>", "<pad>"))
    assert type(hf_model).__name__ == "LlamaForCausalLM" and hf_tok.is_fast
    assert hf_model.num_parameters() == model.num_params()  # 共享嵌入：lm_head 不多算一份
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"{model.num_params():,}" in card and "## 数据 (data)" in card and "不摘这一段" not in card


def test_logits_equal_ours_on_single_and_multi_turn_prompts(exported):
    model, tokenizer, hf_model, _, _ = exported
    sequences = [render_prompt(h, t, tokenizer) for h, t in PROMPTS] + \
                [render_conversation(d, tokenizer)[0] for d in DIALOGUES]  # 整段多轮对话
    for ids in sequences:
        x = torch.tensor([ids])
        with torch.no_grad():
            diff = (model(x) - hf_model(x).logits).abs().max().item()
        assert diff <= 1e-4, (tokenizer.decode(ids, skip_special=False), diff)


def test_chat_template_gives_exactly_our_prompt_ids(exported):
    _, tokenizer, _, hf_tok, _ = exported
    for history, text in PROMPTS:
        ids = hf_tok.apply_chat_template(messages(history, text), add_generation_prompt=True, tokenize=True)["input_ids"]
        assert ids == render_prompt(history, text, tokenizer), (history, text)
    for dialogue in DIALOGUES:  # 不加生成提示：整段对话与训练时渲染的一样
        ids = hf_tok.apply_chat_template(messages(dialogue[:-1], dialogue[-1]), tokenize=True)["input_ids"]
        assert ids == render_conversation(dialogue, tokenizer)[0]
    with pytest.raises(Exception, match="system"):
        hf_tok.apply_chat_template([{"role": "system", "content": "你是助手"}], tokenize=False)


def test_plain_text_encodes_to_our_ids_and_decodes_back(exported):
    _, tokenizer, _, hf_tok, _ = exported
    for text in ["你好", "Hello world", "今天 天气，怎么样？龘", "  两个空格"]:
        assert hf_tok.encode(text) == tokenizer.encode(text), text  # 词表外的"龘"两边都是 <unk>
    assert hf_tok.decode(tokenizer.encode("你好 world"), skip_special_tokens=True) == "你好 world"


def test_tokenizer_json_keeps_every_character_as_is():
    """没有归一化 (normalization)：换行、制表符、回车、全角空格、组合附加符号、表情都各是一个字符、编号与我们的相同。"""
    texts = ["你好😀\n\t\r a  b", "e\u0301 组合附加符号", "\u3000全角空格"]
    tokenizer = Tokenizer().build_vocab(texts)
    backend = tokenizers.Tokenizer.from_str(hf_tokenizer_files(tokenizer, max_len=64)["tokenizer.json"])
    for text in texts + ["𠀀 词表外😃"]:
        ids = backend.encode(text).ids
        assert ids == tokenizer.encode(text), repr(text)
        assert backend.decode(ids, skip_special_tokens=False) == tokenizer.decode(ids, skip_special=False)


def test_other_tokenizer_kinds_get_one_clear_error():
    tokenizer = Tokenizer()._set_tokens(SPECIAL_TOKENS + ["你", "你好"])  # "你好" 是一个多字符词元，像 BPE
    with pytest.raises(StudyGPTError, match="只支持字符级分词器"):
        hf_tokenizer_files(tokenizer, max_len=64)
    with pytest.raises(StudyGPTError, match="只支持字符级分词器"):
        gguf_vocab(tokenizer)


def test_greedy_generate_gives_the_same_reply_as_studygpt_generate(exported, capsys):
    model, tokenizer, hf_model, hf_tok, out = exported
    stopped = 0
    for history, text in PROMPTS:
        ours = generate_response(model, tokenizer, text, history=history, temperature=0, max_length=40)
        x = hf_tok.apply_chat_template(messages(history, text), add_generation_prompt=True, return_tensors="pt",
                                       return_dict=True)
        new = hf_model.generate(**x, max_new_tokens=40)[0, x["input_ids"].shape[1]:].tolist()  # 默认贪心
        stopped += new[-1] == tokenizer.token_id("<|end|>")
        assert hf_tok.decode(new, skip_special_tokens=True) == ours, (history, text)
    assert stopped >= 3, "模型应当在多数提示上自己说完（<|end|>），才测得到两边在同一处停下"
    # 命令行 `studygpt generate --temperature 0` 打印的也是同一句
    run = out.parent / "run"
    assert cli_main(["generate", str(run), "你好", "--temperature", "0", "--max-length", "40"]) == 0
    reply = capsys.readouterr().out.strip()
    assert reply == generate_response(model, tokenizer, "你好", temperature=0, max_length=40) == "你好！很高兴见到你。"


# ===== 坏输入 (bad input)：一句话、非零退出、不留下写了一半的东西 =====
def one_line_error(capsys, argv) -> str:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_run_folder_without_checkpoint_is_one_sentence_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "empty_run").mkdir()
    err = one_line_error(capsys, ["export", str(tmp_path / "empty_run"), "--to", "hf", str(tmp_path / "out")])
    assert "没有 model.safetensors" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty_run"]


def test_unknown_format_and_dtype_are_one_sentence(exported, tmp_path, capsys):
    run = exported[4].parent / "run"
    assert "--to 'onnx' 不认识" in one_line_error(capsys, ["export", str(run), "--to", "onnx", str(tmp_path / "m")])
    assert "q4_k" in one_line_error(capsys, ["export", str(run), "--to", "gguf", str(tmp_path / "m.gguf"),
                                             "--dtype", "q4_k"])
    assert "只用于 --to gguf" in one_line_error(capsys, ["export", str(run), "--to", "hf", str(tmp_path / "m"),
                                                       "--dtype", "f16"])
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force_and_force_replaces_it(exported, tmp_path, capsys):
    run = exported[4].parent / "run"
    out = tmp_path / "hf"
    out.mkdir()
    (out / "mine.txt").write_text("别删我", encoding="utf-8")
    assert "--force" in one_line_error(capsys, ["export", str(run), "--to", "hf", str(out)])
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert cli_main(["export", str(run), "--to", "hf", str(out), "--force"]) == 0
    assert (out / "model.safetensors").is_file() and not (out / "mine.txt").exists()
    assert leftovers(tmp_path) == []


def test_failure_while_writing_leaves_nothing_behind(exported, tmp_path, monkeypatch, capsys):
    import studygpt.export.hf as hf
    run = exported[4].parent / "run"

    def broken(model, tokenizer, folder):
        (folder / "config.json").write_text("{}", encoding="utf-8")  # 写了一半……
        raise OSError("磁盘满了 (disk full)")

    monkeypatch.setattr(hf, "write_hf", broken)
    with pytest.raises(OSError):
        cli_main(["export", str(run), "--to", "hf", str(tmp_path / "hf")])
    assert list(tmp_path.iterdir()) == []


def test_missing_extra_names_the_pip_command(exported, tmp_path, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    err = one_line_error(capsys, ["export", str(exported[4].parent / "run"), "--to", "gguf", str(tmp_path / "m.gguf")])
    assert 'pip install -e ".[export]"' in err and "gguf" in err


def test_core_never_imports_the_export_package():
    """导出依赖核心，核心不依赖导出：除了命令行入口 cli/commands.py，studygpt/ 里没有谁导入 studygpt.export。"""
    for path in (ROOT / "studygpt").rglob("*.py"):
        if "export" in path.relative_to(ROOT / "studygpt").parts or path.name == "commands.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("studygpt.export") for n in names), path
