"""训练循环的测试：调度走完、梯度累加等价、精确续训、原子保存、拒绝 pickle、配置报错。"""
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.compat import load_checkpoint
from studygpt.errors import StudyGPTError
from studygpt.hardware import choose_precision
from studygpt.model.checkpoint import load_model, save_checkpoint
from studygpt.training.optim import TrainConfig, WarmupCosine, build_optimizer
from studygpt.training.trainer import TransformerTrainer
from tests.conftest import DIALOGUES, tiny_model

DATA = DIALOGUES * 6


def make_trainer(tokenizer, out_dir, batch_size=2, seed=0, model_seed=0, **config):
    windows = build_windows(DATA, tokenizer, 64)
    batches = PackedBatches(windows, batch_size=batch_size, seq_len=64, pad_id=tokenizer.vocab["<pad>"], seed=seed)
    model = tiny_model(tokenizer.vocab_size, seed=model_seed, dropout=0.1)
    cfg = {"lr": 3e-3, "use_amp": False, "log_every": 1, "save_every": 0, **config}
    return TransformerTrainer(model, batches, "cpu", cfg, val_loader=batches, tokenizer=tokenizer,
                              out_dir=out_dir, progress=False, log=lambda s: None)


def test_schedule_warms_up_then_decays_to_floor_and_ends():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupCosine(opt, TrainConfig(lr=1.0, warmup_ratio=0.1, min_lr_ratio=0.1), total_steps=100)
    lrs = [sched.lr_at(p / 100) for p in range(101)]
    assert lrs[0] < 0.01 and abs(lrs[10] - 1.0) < 1e-6
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # 预热后单调下降
    assert abs(lrs[100] - 0.1) < 1e-9 and sched.lr_at(1.5) == lrs[100]


def test_weight_decay_only_on_matrices(tokenizer):
    opt = build_optimizer(tiny_model(tokenizer.vocab_size), TrainConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0


def test_grad_accumulation_equals_one_big_batch(tokenizer, tmp_path):
    """2 个小批次 × 累加 2 步 == 1 个大批次（按标签数加权平均，而不是简单平均两个损失）。"""
    a = make_trainer(tokenizer, tmp_path / "a", batch_size=4, grad_accum_steps=1, max_steps=1)
    b = make_trainer(tokenizer, tmp_path / "b", batch_size=2, grad_accum_steps=2, max_steps=1)
    big = next(iter(a.train_loader))
    halves = [{k: v[:2] for k, v in big.items()}, {k: v[2:] for k, v in big.items()}]
    for t in (a, b):
        t.model.eval()  # 关掉 dropout，只比较梯度计算本身
    a.train_step([big])
    b.train_step(halves)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6)


def test_leftover_micro_batches_do_not_leak_into_next_epoch(tokenizer, tmp_path):
    t = make_trainer(tokenizer, tmp_path, grad_accum_steps=4, epochs=2)
    n = len(t.train_loader)
    assert n % 4 != 0  # 这份数据正好有尾巴
    t.train()
    assert t.step == 2 * -(-n // 4)  # 每个 epoch ceil(n/4) 步：尾巴单独一步


def test_exact_resume_equals_straight_run(tokenizer, tmp_path):
    straight = make_trainer(tokenizer, tmp_path / "straight", max_steps=8)
    straight.train()
    first = make_trainer(tokenizer, tmp_path / "resumed", max_steps=8)
    first.train(until_step=4)
    second = make_trainer(tokenizer, tmp_path / "resumed", max_steps=8, model_seed=123)  # 不同的初始化，全靠续训恢复
    second.resume(tmp_path / "resumed" / "last")
    second.train()
    assert second.step == 8
    for (name, pa), pb in zip(straight.model.named_parameters(), second.model.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    third = make_trainer(tokenizer, tmp_path / "resumed", max_steps=8)  # 续训一个已经训完的运行：不多走一步
    third.resume(tmp_path / "resumed" / "last")
    third.train()
    assert third.step == 8


def test_checkpoint_round_trip_and_load_checkpoint_api(tokenizer, tmp_path):
    t = make_trainer(tokenizer, tmp_path, max_steps=3)
    t.train()
    for name in ["last", "best", "metrics.jsonl", "loss_curve.png"]:
        assert (tmp_path / name).exists(), name
    model, tok, meta = load_model(tmp_path)
    x = torch.randint(0, tok.vocab_size, (1, 10))
    t.model.eval()
    assert torch.allclose(model(x), t.model(x), atol=1e-6)
    model, optimizer, scheduler, epoch, config = load_checkpoint(tmp_path / "last")
    assert isinstance(optimizer, torch.optim.AdamW) and len(optimizer.state) > 0
    assert config["lr"] == 3e-3 and config["tokenizer"].vocab_size == tokenizer.vocab_size


def test_pickled_checkpoint_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "model_epoch_2.pt"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload.write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(StudyGPTError, match="pickle"):
        load_checkpoint(payload)
    assert not marker.exists()  # 文件里的代码没有被执行


def test_strict_key_matching_names_the_keys(tokenizer, tmp_path):
    model = tiny_model(tokenizer.vocab_size)
    save_checkpoint(tmp_path / "ck", model, tokenizer)
    from safetensors.torch import load_file, save_file
    state = load_file(str(tmp_path / "ck" / "model.safetensors"))
    state["extra.weight"] = state.pop("norm.weight")
    save_file(state, str(tmp_path / "ck" / "model.safetensors"))
    with pytest.raises(StudyGPTError, match=r"norm\.weight.*extra\.weight"):
        load_model(tmp_path / "ck")


KILL_SCRIPT = """
import sys, torch
from studygpt.model.checkpoint import save_checkpoint
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import tiny_model
tok = Tokenizer().build_vocab(["你好世界"])
i = 0
while True:
    model = tiny_model(tok.vocab_size, seed=i % 3, d_model=64)
    save_checkpoint(sys.argv[1], model, tok)
    i += 1
    print(i, flush=True)
"""


def test_kill_during_save_leaves_a_loadable_checkpoint(tmp_path):
    """反复保存的进程在随机时刻被 SIGKILL：每次之后检查点都能完整加载。"""
    ck = tmp_path / "ck"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for delay in [0.9, 1.3, 1.7]:
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(ck)], cwd=root, stdout=subprocess.PIPE)
        proc.stdout.readline()  # 至少完成了一次保存
        time.sleep(delay - 0.8)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        model, tok, _ = load_model(ck)
        assert model.config.d_model == 64 and tok.vocab_size == 11


def test_interrupted_rename_falls_back_to_old(tokenizer, tmp_path, monkeypatch):
    """在"旧的挪开、新的还没就位"之间崩溃：加载时用 .old。"""
    model = tiny_model(tokenizer.vocab_size)
    save_checkpoint(tmp_path / "last", model, tokenizer)
    real_replace = os.replace

    def crash_on_second(src, dst):
        real_replace(src, dst)
        if str(dst).endswith(".old"):
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "last", tiny_model(tokenizer.vocab_size, seed=1), tokenizer)
    monkeypatch.setattr(os, "replace", real_replace)
    loaded, _, _ = load_model(tmp_path)
    assert torch.equal(loaded.norm.weight, model.norm.weight)


@pytest.mark.parametrize("config, fragment", [
    ({"grad_accum_steps": 0}, "grad_accum_steps"),
    ({"lerning_rate": 1e-3}, "未知的键"),
    ({"warmup_steps": 50, "max_steps": 10}, "warmup_steps"),
])
def test_bad_config_is_a_clear_error(tokenizer, tmp_path, config, fragment):
    with pytest.raises(StudyGPTError, match=fragment):
        make_trainer(tokenizer, tmp_path, **config)


def test_seed_style_keys_accepted():
    cfg = TrainConfig.from_dict({"lr": 5e-3, "weight_decay": 0.01, "epochs": 10, "grad_accum_steps": 4,
                                 "use_amp": True, "max_grad_norm": 1.0, "save_every": 2,
                                 "assistant_token_id": 1, "batch_size": 16})
    assert cfg.epochs == 10 and cfg.max_epochs == 10


def test_cpu_precision_never_picks_slow_bf16(monkeypatch):
    import studygpt.hardware as hw
    monkeypatch.setattr(hw, "cpu_flags", lambda: {"avx2", "fma"})
    p = choose_precision(torch.device("cpu"), use_amp=True)
    assert p.dtype is None and "fp32" in p.reason
    assert choose_precision(torch.device("cpu"), use_amp=False).dtype is None
    monkeypatch.setattr(hw, "cpu_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(hw, "matmul_gflops", lambda dtype, **kw: 100.0 if dtype == torch.float32 else 50.0)
    assert choose_precision(torch.device("cpu")).dtype is None  # 有指令但实测慢：仍用 fp32
    monkeypatch.setattr(hw, "matmul_gflops", lambda dtype, **kw: 100.0 if dtype == torch.float32 else 220.0)
    assert choose_precision(torch.device("cpu")).dtype == torch.bfloat16


def test_custom_objective_and_frozen_weights(tokenizer, tmp_path):
    """objective 换掉损失，循环不变：冻结的权重一位不动，目标被调用，件数 count 用来加权。"""
    from studygpt.model.transformer import lm_loss
    calls = []

    class Halved:  # 语言模型损失的一半：只为证明训练循环真的用了传进来的目标
        def count(self, batch):
            return int(batch["input_ids"].shape[0])

        def __call__(self, model, batch):
            calls.append(batch["input_ids"].shape)
            loss, _ = lm_loss(model, batch)
            return loss * 0.5, int(batch["input_ids"].shape[0])

    base = make_trainer(tokenizer, tmp_path, max_steps=2)
    frozen = next(base.model.parameters())  # 词嵌入（与输出层共享）
    frozen.requires_grad_(False)
    t = TransformerTrainer(base.model, base.train_loader, "cpu", base.config, tokenizer=tokenizer, out_dir=tmp_path,
                           progress=False, log=lambda s: None, objective=Halved())
    before = frozen.detach().clone()
    others = [p.detach().clone() for p in t.model.parameters() if p.requires_grad]
    t.train(until_step=2)
    assert len(calls) == 2 and torch.equal(frozen, before)
    assert any(not torch.equal(a, p) for a, p in zip(others, [p for p in t.model.parameters() if p.requires_grad]))
