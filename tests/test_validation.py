"""验证曲线、best/、过拟合警报与早停、训练前的预测：每个都在几秒内的极小训练上检查。"""
import itertools
import json
import re
import subprocess
import sys
import time

import pytest

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.errors import StudyGPTError
from studygpt.model.checkpoint import load_model
from studygpt.tokenizer.char import Tokenizer
from studygpt.training import forecast
from studygpt.training.trainer import TransformerTrainer
from tests.conftest import DIALOGUES, tiny_model
from tests.test_train import make_trainer

# 验证集是训练时从没见过的对话：训练集只有 4 段，几十个 epoch 之后模型就只会背它们
HELD_OUT = [["你好吗？", "我很好，谢谢你。"], ["今天做什么？", "今天出去走走，看看天气。"],
            ["你会加法吗？", "我会做两位数加法。"]]


def records(out_dir):
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def overfit_trainer(out_dir, logs: list, **config):
    tok = Tokenizer().build_vocab(t for d in DIALOGUES + HELD_OUT for t in d)
    pad = tok.vocab["<pad>"]
    train = PackedBatches(build_windows(DIALOGUES, tok, 64), 2, 64, pad, seed=0)
    val = PackedBatches(build_windows(HELD_OUT, tok, 64), 2, 64, pad, shuffle=False, drop_last=False)
    cfg = {"lr": 1e-2, "use_amp": False, "epochs": 300, "log_every": 1, **config}
    return TransformerTrainer(tiny_model(tok.vocab_size, d_model=64), train, "cpu", cfg, val_loader=val, tokenizer=tok,
                              out_dir=out_dir, progress=False, log=logs.append)


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("overfit")
    logs: list[str] = []
    trainer = overfit_trainer(out, logs)
    summary = trainer.train()
    return out, trainer, summary, logs


def test_overfitting_prints_the_warning_and_early_stopping_keeps_the_best(overfit_run):
    out, trainer, summary, logs = overfit_run
    warning = next(line for line in logs if "过拟合警告" in line)
    assert "验证损失上升" in warning and "训练损失却从" in warning  # 一句话里有数字：从哪一步起、升了多少
    assert summary["early_stopped"] and summary["steps"] < 300            # 早停：远没用完 300 个 epoch
    assert any("早停 (early stopping)" in line for line in logs)
    val = [r for r in records(out) if "val_loss" in r]
    best = min(val, key=lambda r: r["val_loss"])
    assert best["val_loss"] < val[-1]["val_loss"]                         # best/ 比最后一步好
    _, _, meta = load_model(out)                                          # 给训练目录：默认用 best/
    assert meta["checkpoint"].endswith("best") and meta["step"] == best["step"]
    assert meta["val_loss"] == pytest.approx(best["val_loss"])
    assert json.loads((out / "last" / "config.json").read_text(encoding="utf-8"))["step"] == summary["steps"]


def test_report_says_whether_it_overfit(overfit_run):
    from studygpt.recipes.report import overfit_section
    _, trainer, summary, _ = overfit_run
    text = "\n".join(overfit_section(trainer.guard, summary))
    assert "过拟合了吗？ (did it overfit?)" in text and "是 (yes)" in text and "loss_curve.png" in text


def test_chat_and_eval_load_best_and_say_so(overfit_run, tmp_path):
    out, _, _, _ = overfit_run
    best_step = json.loads((out / "best" / "config.json").read_text(encoding="utf-8"))["step"]
    said = f"已加载 (loaded) {out / 'best'}：第 {best_step} 步"
    chat = subprocess.run([sys.executable, "-m", "studygpt", "chat", str(out), "--max-length", "5"],
                          input="你好\nexit\n", capture_output=True, text=True, timeout=120)
    assert chat.returncode == 0, chat.stderr
    assert said in chat.stderr and "验证损失 (val loss)" in chat.stderr
    data = tmp_path / "val.conv"
    data.write_text("".join("E\n" + "".join(f"M {t}\n" for t in d) for d in HELD_OUT), encoding="utf-8")
    ev = subprocess.run([sys.executable, "-m", "studygpt", "eval", str(out), "--data", str(data), "--max-length", "5",
                         "--out", str(tmp_path / "eval.json")], capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr
    assert said in ev.stderr


@pytest.mark.parametrize("budget", [{"max_steps": 30}, {"epochs": 3}])
def test_default_schedule_gives_20_points_and_validates_each_epoch_end(tokenizer, tmp_path, budget):
    t = make_trainer(tokenizer, tmp_path, batch_size=1, eval_batches=2, **budget)
    t.train()
    log = records(tmp_path)
    val_steps = [r["step"] for r in log if "val_loss" in r]
    epoch_ends = [r["step"] for r in log if r.get("epoch_end")]
    assert len(val_steps) >= 20 and len(val_steps) == len(set(val_steps))  # 同一步不验证两次
    assert epoch_ends and set(epoch_ends) <= set(val_steps)
    if "epochs" in budget:
        assert len(epoch_ends) == 3
    assert (tmp_path / "loss_curve.png").is_file()


def test_time_budget_also_gets_eval_points(tokenizer, tmp_path):
    t = make_trainer(tokenizer, tmp_path, max_minutes=1.0)
    t.val_mark = 0
    due = [t._validation_due(p / 1000) for p in range(1001)]   # 按时间算出的进度，从 0 走到 1
    assert sum(due) == t.config.eval_points


def test_a_slow_first_step_does_not_use_up_the_time_budget(tokenizer, tmp_path, monkeypatch):
    """第一步含编译（CUDA 上 torch.compile 要一两分钟）：这段时间不算进 --max-minutes，学习率照常从预热开始。"""
    t = make_trainer(tokenizer, tmp_path, max_minutes=0.02, warmup_ratio=0.5)  # 预算 1.2 秒
    step = t.train_step

    def first_step_compiles(micro):
        if t.step == 0:
            time.sleep(2.0)  # 比整个预算还长
        return step(micro)

    monkeypatch.setattr(t, "train_step", first_step_compiles)
    t.train()
    assert t.step > 3  # 没把编译算进去：不是第一步之后就"时间到"
    lrs = [h["lr"] for h in t.history if "lr" in h]
    assert lrs[1] > lrs[0]  # 第二步还在预热，学习率在往上走


def test_forecast_matches_what_the_run_does(tokenizer, tmp_path):
    t = make_trainer(tokenizer, tmp_path, grad_accum_steps=3, epochs=1)
    t.train()
    f = t.forecast
    assert f.steps_per_epoch == t.step and f.tokens_per_epoch == t.tokens_seen
    assert f.epochs == 1.0 and f.params == t.model.num_params()
    parts = set(f.memory)
    assert {"权重 (weights)", "梯度 (grads)", "AdamW 状态", "激活 (activations)"} <= parts
    assert f.memory["AdamW 状态"] == 2 * f.memory["权重 (weights)"]


class Endless:
    """没有长度的数据（像强化学习每步现抽的回答 RolloutBatches）：一遍遍给同样的几个批次，没有 epoch。"""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return itertools.cycle(self.batches)


class Counted(Endless):
    """知道一个 epoch 有几批、不知道多少词元的数据（像 DPO 的偏好对 PairBatches）。"""

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def test_forecast_says_only_what_it_knows_about_data_without_a_length(tokenizer, tmp_path):
    """没有长度的数据：预测与测完速度后的估计只说步数、每步秒数、总时间，一个 epoch 的数字也不说（也就不会自相矛盾）。"""
    packed = list(make_trainer(tokenizer, tmp_path / "packed").train_loader)
    for budget, expected in [({"max_steps": 8}, "预算 8 步"), ({"max_minutes": 0.01}, "能走几步要等测完前几步的速度")]:
        lines = []
        TransformerTrainer(tiny_model(tokenizer.vocab_size), Endless(packed), "cpu",
                           {"use_amp": False, "log_every": 1, "save_every": 0, **budget}, tokenizer=tokenizer,
                           out_dir=tmp_path / "endless", progress=False, log=lines.append).train()
        said = [line for line in lines if "预测 (forecast)" in line or "每步约" in line]
        assert expected in said[0] and not any("epoch" in line for line in said), said
        if "max_steps" in budget:  # 8 步一定走得到测完速度（第一步之后再计 5 步）
            assert re.search(r"^  每步约 [0-9.]+ 秒，全部约 [0-9.]+ (秒|分钟)$", said[1]), said
    lines = []
    TransformerTrainer(tiny_model(tokenizer.vocab_size), Counted(packed), "cpu",
                       {"use_amp": False, "max_steps": 1, "save_every": 0}, tokenizer=tokenizer,
                       out_dir=tmp_path / "counted", progress=False, log=lines.append).train()
    forecast_line = next(line for line in lines if "预测 (forecast)" in line)
    assert f"每个 epoch {len(packed)} 个优化步 · 预算 1 步 ≈ {1 / len(packed):.3g} 个 epoch" in forecast_line
    assert "未知" not in forecast_line


def test_forecast_that_does_not_fit_is_a_clear_error(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setattr(forecast, "device_memory", lambda device: (1024 ** 2, "可用内存 (available RAM)"))
    t = make_trainer(tokenizer, tmp_path, batch_size=4, max_steps=2)
    with pytest.raises(StudyGPTError, match=r"--batch-size 2 --grad-accum-steps 2"):
        t.train()
    assert t.step == 0  # 在第一步之前就停下


def test_tensorboard_scalars_when_installed(tokenizer, tmp_path):
    pytest.importorskip("tensorboard")
    make_trainer(tokenizer, tmp_path, max_steps=3).train()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_guard_warns_only_when_training_loss_still_falls():
    from studygpt.training.overfit import OverfitGuard
    stuck, memorising = OverfitGuard(rises=3, patience=5), OverfitGuard(rises=3, patience=5)
    for i, val in enumerate([3.0, 2.5, 2.7, 2.6, 2.8]):   # 最低点之后连续 3 次都更高（有起伏）
        _, stuck_warning = stuck.observe(i, i, val, 2.0)            # 训练损失不动：学不动，不是过拟合
        _, memorising_warning = memorising.observe(i, i, val, 2.0 - 0.2 * i)
    assert stuck_warning is None and "从第 2 个 epoch（第 1 步）起验证损失上升" in memorising_warning
    assert not memorising.should_stop and memorising.best["step"] == 1
    for i in range(5, 7):
        memorising.observe(i, i, 2.9, 1.0)
    assert memorising.since_best == 5 and memorising.should_stop


def test_automatic_validation_batches_keep_validation_cheap():
    from studygpt.training.optim import TrainConfig, validation_batches
    auto = TrainConfig()
    assert [validation_batches(auto, n) for n in (8, 100, 450, 1334, None)] == [2, 2, 6, 20, 20]
    assert validation_batches(TrainConfig(eval_batches=7), 100) == 7   # 给了就用给的
    # 自动时：eval_points 次验证 × 批次数 ≤ 训练计算的 10%（一个训练步 ≈ 3 次前向）
    assert auto.eval_points * validation_batches(auto, 450) <= 0.1 * 3 * 450


def test_a_fresh_run_in_an_old_folder_drops_the_old_best_and_curve(tmp_path):
    """同一目录再训一次（不是续训）：上一次的 best/ 和 metrics.jsonl 作废，chat 不会加载别的运行的模型。"""
    first = overfit_trainer(tmp_path, [], epochs=3)
    first.train()
    assert (tmp_path / "best" / "model.safetensors").is_file()
    second = overfit_trainer(tmp_path, [], epochs=60, keep_best=False)  # keep_best=False：只存 last/
    summary = second.train()
    assert not (tmp_path / "best").exists()
    assert max(r["step"] for r in records(tmp_path)) == summary["steps"]  # 曲线只有这一次运行的点
    assert records(tmp_path)[0]["step"] == 1
    _, _, meta = load_model(tmp_path)                                      # 没有 best/：给训练目录时用 last/
    assert meta["checkpoint"].endswith("last") and meta["step"] == summary["steps"]
    from studygpt.recipes.report import overfit_section
    text = "\n".join(overfit_section(second.guard, summary))
    assert "best/" not in text and "last/" in text                        # 报告不说一个不存在的 best/
