"""按预算定大小 (--preset auto)：参数公式、规则（算力最优 / 数据是瓶颈）、GPU 也按同一条规则、续训沿用选择。
实测速度在这些测试里是假的 (faked throughput)：规则只看量到的数，所以能精确地检查它。"""
from __future__ import annotations

import json
import math

import pytest
import torch

from studygpt.cli.parser import main
from studygpt.model.transformer import DialogueModel
from studygpt.recipes import sizing
from studygpt.recipes.sizing import (
    MAX_EPOCHS,
    TOKENS_PER_PARAM,
    Probe,
    choose_depth,
    family_config,
    flops_per_token,
    interpolate_flops,
    param_count,
    size_for_budget,
)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_param_count_matches_the_model(depth):
    config = family_config(depth, vocab_size=3000)
    assert param_count(config) == DialogueModel(config=config).num_params()
    assert config.d_model == 64 * depth and config.n_layers == depth and config.head_size == 32


def fake_measure(flops_per_s: float):
    """假的实测：这台"机器"每秒做 flops_per_s 次浮点运算，与模型大小无关。"""
    def measure(config, batches, device, seconds, use_amp=True):
        return flops_per_s / flops_per_token(config), 0.1
    return measure


def test_plenty_of_data_picks_about_twenty_tokens_per_parameter():
    choice = size_for_budget(lambda: iter([]), vocab_size=5000, corpus_tokens=10**12, minutes=30,
                             device=torch.device("cpu"), measure=fake_measure(2e11))
    assert not choice.data_limited and choice.depth == choice.compute_optimal_depth
    ratios = {d: choice.train_tokens / param_count(family_config(d, 5000)) for d in (choice.depth,)}
    neighbours = [d for d in (choice.depth - 1, choice.depth + 1) if d in sizing.DEPTHS]
    for d in neighbours:  # 旁边的大小离 20 更远（按对数）
        other = sizing.interpolate_flops([Probe(2, 0, 2e11, 0)], d) / flops_per_token(family_config(d, 5000))
        other_ratio = other * (30 * 60 - 0.2) * 0.9 / param_count(family_config(d, 5000))
        assert abs(math.log(other_ratio / TOKENS_PER_PARAM)) >= abs(math.log(ratios[choice.depth] / TOKENS_PER_PARAM))
    assert "时间才是瓶颈" in "\n".join(choice.lines())


def test_small_corpus_is_data_limited_and_picks_a_bigger_model_for_about_four_epochs():
    choice = size_for_budget(lambda: iter([]), vocab_size=5000, corpus_tokens=200_000, minutes=30,
                             device=torch.device("cpu"), measure=fake_measure(2e11))
    assert choice.data_limited and choice.depth > choice.compute_optimal_depth
    assert choice.epochs <= MAX_EPOCHS and choice.more_data > 1
    text = "\n".join(choice.lines())
    assert "数据才是瓶颈" in text and f"{choice.more_data:.1f} 倍数据" in text


def test_a_faster_machine_gets_a_bigger_model_by_the_same_rule():
    """GPU 上也是这条规则：同样的预算与数据，快 1000 倍的"机器"选的模型大得多。"""
    kwargs = dict(vocab_size=5000, corpus_tokens=10**12, minutes=15, device=torch.device("cpu"))
    cpu = size_for_budget(lambda: iter([]), measure=fake_measure(2e11), **kwargs)
    gpu = size_for_budget(lambda: iter([]), measure=fake_measure(2e14), **kwargs)
    assert gpu.depth > cpu.depth + 2


def test_interpolation_between_probes_and_nearest_outside():
    probes = [Probe(2, 0, 1e11, 0), Probe(6, 0, 4e11, 0)]
    assert interpolate_flops(probes, 1) == 1e11 and interpolate_flops(probes, 9) == 4e11
    assert interpolate_flops(probes, 4) == pytest.approx(2e11)  # 对数中点


def test_choose_depth_is_compute_optimal_when_data_suffices():
    probes = [Probe(2, 0, 1e11, 0)]
    depth, optimal, limited, more = choose_depth(probes, 5000, 600, corpus_tokens=10**12)
    assert depth == optimal and not limited and more == 1.0


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "d.conv"
    pairs = [("你好", "你好呀"), ("在吗", "在的"), ("吃饭了吗", "吃过了"), ("今天天气怎么样", "今天是晴天")]
    path.write_text("".join(f"E\nM {q}{i}\nM {a}{i}\n" for i in range(300) for q, a in pairs), encoding="utf-8")
    return path


def test_auto_preset_prints_its_choice_trains_and_resume_keeps_it(corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    code = main(["train", "--data", str(corpus), "--out", str(out), "--preset", "auto", "--max-minutes", "0.04",
                 "--no-progress", "--device", "cpu", "--batch-size", "4"])
    printed = capsys.readouterr().out
    assert code == 0 and "按预算定大小 (auto size)" in printed and "理由 (why)" in printed
    run = json.loads((out / "last" / "config.json").read_text(encoding="utf-8"))["run"]
    chosen = family_config(run["sizing"]["depth"], 1)
    assert run["model"]["d_model"] == chosen.d_model and run["model"]["n_layers"] == chosen.n_layers
    assert run["train"]["lr"] == pytest.approx(sizing.learning_rate(chosen.d_model))

    def no_probe(*args, **kwargs):
        raise AssertionError("续训不应再实测")
    monkeypatch.setattr("studygpt.recipes.train.size_for_budget", no_probe)
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0


def test_auto_preset_needs_a_time_budget(corpus, tmp_path, capsys):
    code = main(["train", "--data", str(corpus), "--out", str(tmp_path / "r"), "--preset", "auto", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--max-minutes" in err and len(err.splitlines()) == 1
