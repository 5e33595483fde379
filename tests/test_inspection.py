"""看看里面的工具 (inspect tools)：它们给学习者看的东西必须是真的——和模型、生成、参数量对得上。"""
from pathlib import Path

import pytest
import torch

from studygpt import plotting
from studygpt.cli.parser import main as cli_main
from studygpt.generation.generate import SamplingConfig, generate_tokens
from studygpt.inspection.attention import attention_maps, attention_weights
from studygpt.inspection.next_token import inspect_next, settings_table
from studygpt.inspection.params import cost_breakdown
from studygpt.inspection.tokens import inspect_tokens, show_token
from studygpt.model.checkpoint import save_checkpoint
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.recipes.presets import PRESETS
from tests.conftest import tiny_model


def test_tokens_count_unk_and_mark_learned_tokens(tokenizer):
    single = inspect_tokens(["你好☃"], tokenizer)
    assert "'☃'" not in single and "<unk> 1 个" in single  # ☃ 不在词表里
    dialogue = inspect_tokens(["你好", "你好！"], tokenizer)
    assert "<|user|>你好<|end|><|assistant|>[你][好][！][<|end|>]" in dialogue and "4 个参与损失" in dialogue
    assert "\033[1;32m你\033[0m" in inspect_tokens(["你好", "你好！"], tokenizer, color=True)  # 终端里是绿色


def test_param_formulas_match_the_real_model():
    configs = [ModelConfig(vocab_size=100, d_model=32, n_head=4, n_layers=3, max_len=16)]
    configs += [ModelConfig(vocab_size=1000, **p["model"]) for p in PRESETS.values()]
    for config in configs:
        costs = cost_breakdown(config, seq_len=config.max_len)
        assert sum(c.params for c in costs) == DialogueModel(config=config).num_params()


def test_training_flops_are_six_per_matrix_parameter_plus_attention_scores():
    c = ModelConfig(vocab_size=100, d_model=32, n_head=4, n_layers=3, max_len=16)
    costs = {x.name: x for x in cost_breakdown(c, seq_len=16)}
    matrices = 4 * 32 * 32 * 3 + 3 * 32 * c.ffn_hidden * 3 + 32 * 100  # 注意力投影 + 前馈 + 共享的输出层
    assert sum(x.flops_per_token for x in costs.values()) == 6 * matrices + 12 * 3 * 16 * 32


def test_next_token_steps_follow_greedy_generation(tokenizer):
    model = tiny_model(tokenizer.vocab_size).eval()
    text = inspect_next(model, tokenizer, "你好", steps=3, top=4)
    prompt = [0, tokenizer.vocab["你"], tokenizer.vocab["好"], 2, 1]  # <|user|>你好<|end|><|assistant|>
    greedy = [s.text for s in generate_tokens(model, prompt, 3, SamplingConfig(temperature=0), tokenizer)]
    picks = [line.split("'")[1] for line in text.splitlines() if "贪心选" in line]
    assert picks == [show_token(t) for t in greedy][:len(picks)]
    assert "T=0.5" in text and "top_p=0.9" in text and "rep=1.3" in text


def test_settings_table_counts_the_tokens_each_setting_keeps(tokenizer):
    logits = torch.linspace(-3, 3, tokenizer.vocab_size)
    kept = settings_table(logits, [], tokenizer, top=3)[-1].split()[2:]
    # T=0.5 / T=1 / T=1.5 / rep=1.3 不去掉任何词元；top_k=5 只留 5 个
    assert kept[:4] == [str(tokenizer.vocab_size)] * 3 + ["5"] and kept[5] == str(tokenizer.vocab_size)


def test_attention_weights_are_causal_rows_and_leave_the_model_as_it_was(tokenizer):
    model = tiny_model(tokenizer.vocab_size)
    weights = attention_weights(model, list(range(6)))
    assert len(weights) == 2 and weights[0].shape == (4, 6, 6)  # L 层，每层 (nh, T, T)
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones(4, 6))          # 每行和为 1
        assert float(w.triu(1).abs().max()) == 0.0                       # 看不到未来
    assert not any(layer.attention._forward_hooks for layer in model.layers)  # 检查用的钩子已摘掉
    assert model.training  # 原来是训练模式，仍然是


def test_attention_maps_write_one_png_per_layer_even_without_a_cjk_font(tokenizer, tmp_path, monkeypatch):
    model = tiny_model(tokenizer.vocab_size).eval()
    # 真的走"没有中文字体"那条路（逐字的警告被关掉）
    monkeypatch.setattr("studygpt.inspection.attention.setup_cjk_font", lambda: plotting.setup_cjk_font(["No Such Font"]))
    paths, font = attention_maps(model, tokenizer, "你好", tmp_path, reply_tokens=2)
    assert font is None and [p.name for p in paths] == ["attention_layer0.png", "attention_layer1.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_cjk_font_installed_after_the_font_cache_is_found(monkeypatch):
    from matplotlib import font_manager
    path = plotting.KNOWN_FONT_FILES[0]
    if not Path(path).is_file():
        pytest.skip(f"{path} 不存在（apt-get install fonts-wqy-microhei）")
    # 假装缓存建好之后才装上文泉驿：把它从已知字体里拿掉
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [f for f in font_manager.fontManager.ttflist if "wqy" not in f.fname.lower()])
    assert plotting.setup_cjk_font(["WenQuanYi Micro Hei"]) == "WenQuanYi Micro Hei"
    assert plotting.setup_cjk_font(["No Such Font"]) is None


def test_cli_inspect_commands_and_user_errors(tokenizer, tmp_path, capsys):
    run = save_checkpoint(tmp_path / "run", tiny_model(tokenizer.vocab_size), tokenizer)
    assert cli_main(["inspect", "params", str(run)]) == 0
    assert "合计 (total)" in capsys.readouterr().out
    assert cli_main(["inspect", "tokens", "--vocab", str(run), "你好", "你好！"]) == 0
    assert "[你][好][！][<|end|>]" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # --tokens 0 在解析参数时就被拦下（cli/parser.py 的 COUNT）
        cli_main(["inspect", "next", str(run), "你好", "--tokens", "0"])
    assert exit_info.value.code == 2
    assert cli_main(["inspect", "attention", str(tmp_path / "missing"), "你好"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "--tokens" in errors[0] and "missing" in errors[1]
