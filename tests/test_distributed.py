"""数据并行 (DDP) 的测试：2 个 CPU 进程（gloo）与 1 个进程、同样的全局批大小，结果相同。"""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.errors import StudyGPTError
from studygpt.tokenizer.char import Tokenizer
from studygpt.training.trainer import TransformerTrainer
from tests.conftest import DIALOGUES, tiny_model

GLOBAL_BATCH = 4


def make_trainer(out_dir, rank=0, world_size=1, **config):
    torch.set_num_threads(1)  # 2 个进程分 2 个核
    tokenizer = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
    windows = build_windows(DIALOGUES * 8, tokenizer, 64)
    batches = PackedBatches(windows, GLOBAL_BATCH, 64, tokenizer.vocab["<pad>"], seed=0,
                            rank=rank, world_size=world_size)
    val = PackedBatches(windows[:10], GLOBAL_BATCH, 64, tokenizer.vocab["<pad>"], shuffle=False, drop_last=False,
                        rank=rank, world_size=world_size)
    model = tiny_model(tokenizer.vocab_size)
    cfg = {"lr": 3e-3, "use_amp": False, "grad_accum_steps": 2, "max_steps": 6, **config}
    return TransformerTrainer(model, batches, "cpu", cfg, val_loader=val, tokenizer=tokenizer, out_dir=out_dir,
                              progress=False, log=lambda s: None)


def worker(rank, world_size, port, out_dir, until_step):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        trainer = make_trainer(out_dir, rank, world_size)
        trainer.train(until_step=until_step)
        dist.barrier()  # 两个进程都做完再拆进程组：一个先拆、另一个还在收发时，gloo 偶尔 abort（SIGABRT）
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(2, free_port(), str(out), 3), nprocs=2, join=True)
    return out


def same_weights(a, b):
    return all(torch.allclose(p, q, atol=1e-5) for p, q in zip(a.parameters(), b.parameters()))


def test_two_processes_equal_one_process_with_same_global_batch(two_process_run, tmp_path):
    from studygpt.model.checkpoint import load_model
    single = make_trainer(tmp_path)
    single.train(until_step=3)
    ddp_model, _, meta = load_model(two_process_run / "last")
    assert meta["step"] == 3
    assert same_weights(single.model, ddp_model)
    changed = make_trainer(tmp_path / "untrained").model
    assert not same_weights(changed, ddp_model)  # 确实训练过


def test_checkpoint_from_two_processes_resumes_in_one(two_process_run, tmp_path):
    straight = make_trainer(tmp_path / "straight")
    straight.train()                                   # 一个进程直接训练 6 步
    resumed = make_trainer(tmp_path / "resumed")
    resumed.resume(two_process_run / "last")           # 2 个进程训练的前 3 步
    resumed.train()
    assert resumed.step == 6 and same_weights(straight.model, resumed.model)


def test_world_size_must_divide_global_batch():
    with pytest.raises(StudyGPTError, match="整除"):
        PackedBatches([], 5, 64, 3, world_size=2)


def test_wrong_launch_is_a_clear_error(monkeypatch):
    from studygpt.training.distributed import setup_distributed
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(StudyGPTError, match="torchrun"):
        setup_distributed("cpu")
