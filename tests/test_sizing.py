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
from tests.conftest import write_numbered_pairs


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


def test_the_chosen_size_is_always_one_that_was_measured():
    """真的 CPU 上大矩阵更快：FLOP/s 随大小变。只量 depth 2 时插值会低估大模型的速度（30 分钟的扫描里低了 28%），
    所以选中的大小没量过就量它，再按全部实测点选：最后选的大小是量过的，预计的速度就是量到的速度。"""
    calls = []

    def growing(config, batches, device, seconds, use_amp=True):  # 每宽 64 维，每秒多 1e10 次浮点运算
        calls.append(config.n_layers)
        return config.n_layers * 1e10 / flops_per_token(config), 0.1
    # 只量 2 个大小时（旧的做法），后四种都会选到没量过的大小：第一次按 depth 2 猜，量了猜的，再选却又变了
    for corpus, minutes in ((10**12, 30), (1_190_000, 60), (1_190_000, 120), (3_000_000, 120), (300_000, 30)):
        calls.clear()
        choice = size_for_budget(lambda: iter([]), vocab_size=5000, corpus_tokens=corpus, minutes=minutes,
                                 device=torch.device("cpu"), measure=growing, compile=False)
        assert calls[0] == 2 and len(calls) <= sizing.MAX_PROBES and len(set(calls)) == len(calls)
        assert choice.depth in calls, (corpus, minutes, calls, choice.depth)
        measured = next(p for p in choice.probes if p["depth"] == choice.depth)
        assert interpolate_flops([Probe(**p) for p in choice.probes], choice.depth) == measured["flops_per_s"]


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
    return write_numbered_pairs(tmp_path / "d.conv")


def test_auto_preset_prints_its_choice_trains_and_resume_keeps_it(corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    code = main(["train", "--data", str(corpus), "--out", str(out), "--preset", "auto", "--max-minutes", "0.04",
                 "--no-progress", "--device", "cpu", "--batch-size", "4", "--threads", "1"])
    printed = capsys.readouterr().out
    assert code == 0 and "按预算定大小 (auto size)" in printed and "理由 (why)" in printed
    run = json.loads((out / "last" / "config.json").read_text(encoding="utf-8"))["run"]
    chosen = family_config(run["sizing"]["depth"], 1)
    assert run["model"]["d_model"] == chosen.d_model and run["model"]["n_layers"] == chosen.n_layers
    assert run["train"]["lr"] == pytest.approx(sizing.learning_rate(chosen.d_model))
    # 2 秒多的预算放不下实测编译：不编译，说了为什么，并记进运行设置
    assert run["train"]["compile"] is False and "预算太短" in run["sizing"]["compile_reason"]
    assert "编译 (torch.compile): 不开 (off)" in printed

    def no_probe(*args, **kwargs):
        raise AssertionError("续训不应再实测")
    monkeypatch.setattr("studygpt.recipes.train.size_for_budget", no_probe)
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    resumed = json.loads((out / "last" / "config.json").read_text(encoding="utf-8"))["run"]
    assert resumed["train"]["compile"] is False and resumed["sizing"] == run["sizing"]


def test_auto_preset_needs_a_time_budget(corpus, tmp_path, capsys):
    code = main(["train", "--data", str(corpus), "--out", str(tmp_path / "r"), "--preset", "auto", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--max-minutes" in err and len(err.splitlines()) == 1


# ===== 规则 5：编不编译 (compile or not)，用假的计时 =====
def test_compile_pays_only_when_the_speed_up_earns_back_the_compile_time():
    # 30 分钟里编译 30 秒、快 1.3 倍：划算；同样的编译，只剩 100 秒：(100 − 30) × 1.3 < 100，不划算
    assert sizing.compile_pays(1620, 30, eager_tokens_per_s=1000, compiled_tokens_per_s=1300)
    assert not sizing.compile_pays(100, 30, eager_tokens_per_s=1000, compiled_tokens_per_s=1300)
    # 正好回本的边界：(T − c) × s = T  ⇔  T = c·s / (s − 1) = 130 秒
    assert not sizing.compile_pays(130, 30, 1000, 1300) and sizing.compile_pays(131, 30, 1000, 1300)
    # 编译后反而不快：多长的预算都不划算
    assert not sizing.compile_pays(10**6, 1, eager_tokens_per_s=1000, compiled_tokens_per_s=1000)


def test_compile_probe_only_when_it_fits_in_five_percent_of_the_budget():
    assert not sizing.compile_probe_fits(budget_s=5 * 60, spent_s=8, guess_s=25)     # 5 分钟：15 秒里放不下
    assert sizing.compile_probe_fits(budget_s=30 * 60, spent_s=48, guess_s=35)       # 30 分钟：90 秒里放得下
    assert not sizing.compile_probe_fits(budget_s=30 * 60, spent_s=60, guess_s=35)   # 大小的实测已经花多了


def fake_compile(compile_s: float, speed_up: float, calls: list | None = None):
    """假的编译实测：编译花 compile_s 秒，之后比 fake_measure 的不编译速度快 speed_up 倍。"""
    def measure_compile(config, batches, device, seconds, precision):
        if calls is not None:
            calls.append(config.n_layers)
        return compile_s, speed_up * 2e11 / flops_per_token(config), compile_s + 1
    return measure_compile


def auto_size(minutes: float, **kwargs):
    return size_for_budget(lambda: iter([]), vocab_size=5000, corpus_tokens=10**12, minutes=minutes,
                           device=torch.device("cpu"), measure=fake_measure(2e11), **kwargs)


def test_long_budget_measures_compile_and_turns_it_on_when_it_pays(monkeypatch):
    monkeypatch.setattr(sizing, "has_cpp_compiler", lambda: True)
    calls = []
    choice = auto_size(60, measure_compile=fake_compile(30, 1.3, calls))
    assert calls == [choice.depth]  # 只给选好的大小量一次
    assert choice.compile and choice.compile_probe["compile_s"] == 30
    assert choice.probe_seconds <= 0.05 * 60 * 60  # 连同实测编译，实测不超过预算的 5%
    assert "编译 (torch.compile): 开 (on)" in "\n".join(choice.lines())
    slower = auto_size(60, measure_compile=fake_compile(30, 1.005))  # 快 0.5%，约 3,240 秒里摊不回 30 秒
    assert not slower.compile and "编译不划算" in slower.compile_reason
    # 预计的词元按编译后的速度、扣掉编译时间算（假的机器：每秒 2e11 × 1.3 次浮点运算）
    seconds = sizing.training_seconds(3600, choice.probe_seconds) - 30
    expected = 1.3 * 2e11 / flops_per_token(family_config(choice.depth, 5000)) * seconds
    assert choice.train_tokens == pytest.approx(expected, rel=1e-6)


def test_compiled_speed_can_make_the_data_the_limit(monkeypatch):
    """不编译时语料够走（约 3.5 个 epoch）；编译后快 1.5 倍，同样的语料就要重复 4 个 epoch 以上：改按数据是瓶颈来选。"""
    monkeypatch.setattr(sizing, "has_cpp_compiler", lambda: True)
    eager = auto_size(60, compile=False)
    corpus = int(eager.train_tokens / 3.5)
    kwargs = dict(vocab_size=5000, corpus_tokens=corpus, minutes=60, device=torch.device("cpu"),
                  measure=fake_measure(2e11))
    assert not size_for_budget(lambda: iter([]), compile=False, **kwargs).data_limited
    compiled = size_for_budget(lambda: iter([]), measure_compile=fake_compile(30, 1.5), **kwargs)
    assert compiled.compile and compiled.data_limited and compiled.epochs <= MAX_EPOCHS * 1.01
    assert "数据才是瓶颈" in "\n".join(compiled.lines())


def test_short_budget_does_not_measure_compile_and_says_so(monkeypatch):
    monkeypatch.setattr(sizing, "has_cpp_compiler", lambda: True)
    calls = []
    choice = auto_size(5, measure_compile=fake_compile(30, 1.3, calls))
    assert calls == [] and not choice.compile and choice.compile_probe is None
    assert "预算太短" in choice.compile_reason


def test_compile_failure_or_no_compiler_falls_back_to_eager_in_one_line(monkeypatch):
    monkeypatch.setattr(sizing, "has_cpp_compiler", lambda: True)

    def broken(*args, **kwargs):
        raise RuntimeError("InductorError: CppCompileError: C++ compile error\nlong log line 2\nline 3")
    choice = auto_size(60, measure_compile=broken)
    assert not choice.compile and "torch.compile 失败（RuntimeError: InductorError" in choice.compile_reason
    assert "\n" not in choice.compile_reason
    monkeypatch.setattr(sizing, "has_cpp_compiler", lambda: False)
    calls = []
    choice = auto_size(60, measure_compile=fake_compile(30, 1.3, calls))
    assert calls == [] and not choice.compile and "g++" in choice.compile_reason


def test_a_given_compile_flag_is_kept_without_measuring():
    calls = []
    choice = auto_size(60, compile=False, measure_compile=fake_compile(30, 1.3, calls))
    assert calls == [] and not choice.compile and "--compile false" in choice.compile_reason


@pytest.mark.slow  # 真的编译一次（忙的 2 核机器上 depth 1 约 20 秒）
def test_real_compile_probe_measures_or_falls_back_in_one_line(corpus):
    from studygpt.batches.packing import PackedBatches
    from studygpt.batches.windows import build_windows
    from studygpt.corpus.read import read_dialogues
    from studygpt.hardware import choose_precision
    from studygpt.tokenizer.char import Tokenizer
    from studygpt.tokenizer.specials import PAD
    dialogues, _ = read_dialogues(corpus)
    tokenizer = Tokenizer().build_vocab(t for d in dialogues for t in d)
    windows = build_windows(dialogues, tokenizer, 64)
    batches = PackedBatches(windows, 4, 64, tokenizer.token_id(PAD))
    config = family_config(1, tokenizer.vocab_size)
    device = torch.device("cpu")
    on, reason, measured, seconds = sizing.decide_compile(config, iter(batches), device, choose_precision(device),
                                                          budget_s=3600, spent_s=1, eager_tokens_per_s=1e9)
    assert "\n" not in reason and seconds > 0 and not on  # 不编译的速度假装极快：编译不可能划算
    assert measured is None or (measured["compile_s"] > 0 and measured["compiled_tokens_per_s"] > 0)
