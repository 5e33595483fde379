"""磁盘满了 (full disk)：保存失败只得到一句话，上一个检查点原样可用，训练干净地停下。

两种模拟：
- ENOSPC（设备上没有空间）：把写权重的函数换成抛 OSError(ENOSPC) 的假函数；
- 真的写不下：子进程里用 RLIMIT_FSIZE 限制单个文件的大小（超过就 EFBIG）。
  默认超限时内核发 SIGXFSZ 信号直接杀掉进程，所以子进程先忽略这个信号，写入才会变成 OSError。
"""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import studygpt.model.checkpoint as checkpoint
from studygpt.errors import StudyGPTError
from studygpt.model.checkpoint import load_model, load_trainer_state, save_checkpoint
from tests.conftest import tiny_model

ROOT = Path(__file__).resolve().parents[1]


def test_enospc_while_saving_is_one_sentence_and_keeps_the_previous_checkpoint(tokenizer, tmp_path, monkeypatch):
    old = tiny_model(tokenizer.vocab_size, seed=0)
    save_checkpoint(tmp_path / "last", old, tokenizer)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    with pytest.raises(StudyGPTError, match="磁盘满了") as info:
        save_checkpoint(tmp_path / "last", tiny_model(tokenizer.vocab_size, seed=1), tokenizer)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # 临时文件夹已清理
    loaded, _, _ = load_model(tmp_path / "last")
    assert torch.equal(loaded.norm.weight, old.norm.weight)


FSIZE_SCRIPT = """
import json, resource, signal, sys
from pathlib import Path
from studygpt.errors import StudyGPTError
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import DIALOGUES
from tests.test_train import make_trainer
out = Path(sys.argv[1])
tok = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
trainer = make_trainer(tok, out, max_steps=6, eval_every=2)
trainer.train(until_step=2)                       # 第 2 步：last/ 正常存好
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # 超限时不要被信号杀掉，让 write 抛 OSError(EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, resource.RLIM_INFINITY))  # 每个文件最多 32 KB：权重写不下
try:
    trainer.train()
except StudyGPTError as err:
    print(json.dumps({"error": str(err), "step": trainer.step}))
    sys.exit(3)
print(json.dumps({"error": None}))
"""


def test_file_size_limit_during_training_stops_cleanly_and_last_still_loads(tmp_path):
    out = subprocess.run([sys.executable, "-c", FSIZE_SCRIPT, str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                         text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert out.returncode == 3, out.stdout[-1000:] + out.stderr[-2000:]  # 干净地停下：一句话、非零退出，没有 traceback
    assert "Traceback" not in out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "磁盘满了" in result["error"] and "\n" not in result["error"]
    model, _, meta = load_model(tmp_path / "run" / "last")   # 上一个检查点（第 2 步）完好
    assert meta["step"] == 2 and load_trainer_state(tmp_path / "run" / "last")["step"] == 2
    assert not [p for p in (tmp_path / "run").iterdir() if ".tmp-" in p.name]  # 没有留下半截的临时文件夹


def test_stale_tmp_dir_from_a_killed_save_is_removed_by_the_next_save(tokenizer, tmp_path):
    """kill 耐力测试找到的：保存到一半被 kill -9，.last.tmp-* 留在磁盘上，一次次越积越多。"""
    stale = tmp_path / ".last.tmp-killed"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\0" * 1024)
    save_checkpoint(tmp_path / "last", tiny_model(tokenizer.vocab_size), tokenizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
