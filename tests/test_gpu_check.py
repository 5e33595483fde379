"""benchmarks/gpu_check.py 本身的测试：有 GPU 的会话只有 15 分钟，脚本在那里第一次跑就要跑通。

没有 GPU 时它说一句话、退出码 2；--smoke 在 CPU 上用极小的设置把每一部分走一遍（slow 标记）；
从 metrics.jsonl 读出 tokens/s、每个 epoch 的时间与验证损失最低点的那部分，用造出来的日志检查。
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCH / "gpu_check.py"


def load_gpu_check():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.skipif(torch.cuda.is_available(), reason="这台机器有 GPU")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "没有可用的 CUDA GPU" in done.stdout and "Traceback" not in done.stderr


def test_summary_of_a_run_reads_speed_epochs_and_the_lowest_validation(tmp_path):
    rows = []
    for step in range(1, 31):  # 每 epoch 10 步；第一个 epoch 慢（编译），之后每步 1 秒
        elapsed = 10.0 + step if step > 10 else 2.0 * step
        rows.append({"step": step, "epoch": (step - 1) // 10, "loss": 3.0, "tokens_per_s": 1000.0 if step > 3 else 10.0,
                     "elapsed_s": elapsed})
        if step % 5 == 0:
            val = {5: 5.0, 10: 4.0, 15: 3.5, 20: 3.8, 25: 4.1, 30: 4.4}[step]
            rows.append({"step": step, "epoch": (step - 1) // 10, "val_loss": val, "val_bpc": val * 1.6, "train_loss": 3.0})
        if step % 10 == 0:
            rows.append({"step": step, "epoch": (step - 1) // 10, "epoch_end": True})
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    s = load_gpu_check().summarize_metrics(path)
    assert s["steps"] == 30 and s["epochs_done"] == 3 and s["steps_per_epoch"] == 10
    assert s["tokens_per_s_median"] == 1000.0          # 前 10% 的步（编译、预热）不算
    assert s["first_epoch_s"] == 20.0 and s["epoch_s_median"] == 10.0
    assert (s["best_val_step"], s["best_val_epochs"], s["best_val_loss"]) == (15, 1.5, 3.5)
    assert s["last_val_loss"] == 4.4 and s["validations"] == 6


@pytest.mark.slow
def test_smoke_run_walks_every_part_on_the_cpu_and_writes_no_results(tmp_path):
    results = BENCH / "results"
    before = {p.name: p.read_bytes() for p in results.glob("*.jsonl")}
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--recipe"], capture_output=True, text=True,
                          timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "出错 (failed)" not in done.stdout and "失败" not in done.stdout, done.stdout[-3000:]
    assert "文档掩码 (document mask)" in done.stdout and "相同 (same)" in done.stdout
    assert done.stdout.count("同种子词元相同：[True, True]") == 2
    assert "| 验证损失最低点 |" in done.stdout and "| 留出 bpc" in done.stdout
    assert {p.name: p.read_bytes() for p in results.glob("*.jsonl")} == before


def test_a_failing_part_is_recorded_and_a_stuck_command_is_stopped(monkeypatch, capsys):
    """一部分出错只记下错误（后面的部分照跑）；训练命令超时被停掉，返回 124。"""
    monkeypatch.setenv("BENCH_DRY_RUN", "1")
    gpu_check = load_gpu_check()
    gpu_check.part(gpu_check.Check(smoke=True), "decode", lambda: 1 / 0)
    assert "decode 出错 (failed): ZeroDivisionError" in capsys.readouterr().out
    assert gpu_check.studygpt_command(["train", "--help"], timeout=0.01) == 124
