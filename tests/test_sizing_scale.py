"""45 万段对话的语料也能 `--preset auto`（第 28 号问题：小黄鸡 Xiaohuangji 的真实大小，用合成数据测）。

合成的 .conv 有 450,000 段短的一问一答（每句 2–12 个随机汉字）。一次真的 `studygpt train --preset auto`
（极小的预算，在子进程里跑，才量得到它自己的内存峰值）：读得完、数得对（每 epoch 的词元数与按字数算的完全一样）、
选了一个大小、说时间才是瓶颈，内存不爆。再用假的实测速度，在同样 45 万段的词元数上检查"数据是不是瓶颈"说得对。
"""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studygpt.recipes import sizing
from studygpt.tokenizer.chat_format import render_conversation
from studygpt.tokenizer.load import load_tokenizer
from tests.test_sizing import fake_measure

DIALOGUES = 450_000
ROOT = Path(__file__).resolve().parents[1]


def write_synthetic_conv(path: Path, dialogues: int, seed: int = 0) -> int:
    """写 dialogues 段一问一答的 .conv（小黄鸡格式：`E` 开始一段，`M 文本` 一句），返回一共多少个字。"""
    rng = random.Random(seed)
    chars = [chr(0x4E00 + i) for i in range(3000)]  # 3,000 个常见范围的汉字：词表不到 1 万的上限，每个字都进词表
    total, lines = 0, []
    for _ in range(dialogues):
        q, a = ("".join(rng.choices(chars, k=rng.randint(2, 12))) for _ in range(2))
        total += len(q) + len(a)
        lines.append(f"E\nM {q}\nM {a}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return total


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    """在 45 万段的合成语料上跑一次 `studygpt train --preset auto --max-minutes 0.02`，返回 (运行目录, 输出, 总字数, 内存峰值 MB)。"""
    folder = tmp_path_factory.mktemp("xhj")
    chars = write_synthetic_conv(folder / "xhj_synthetic.conv", DIALOGUES)
    write_synthetic_conv(folder / "val.conv", 50, seed=1)  # 小的验证集：训练完的评估只要几秒
    out = folder / "run"
    argv = ["train", "--data", str(folder / "xhj_synthetic.conv"), "--val", str(folder / "val.conv"),
            "--out", str(out), "--preset", "auto", "--max-minutes", "0.02", "--no-progress", "--device", "cpu",
            "--batch-size", "4", "--threads", "1"]  # 一个线程：忙的 2 核机器上两个线程反而慢几倍
    code = ("import resource, sys\nfrom studygpt.cli.parser import main\ncode = main(sys.argv[1:])\n"
            "print('MAXRSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    peak = int(done.stdout.rsplit("MAXRSS_MB", 1)[1].split()[0])
    return out, done.stdout, chars, peak


def test_auto_on_450k_dialogues_counts_every_token_chooses_a_size_and_fits_in_memory(big_run):
    out, printed, chars, peak_mb = big_run
    assert f"{DIALOGUES:,} 段对话 (dialogues)" in printed and "没有跳过任何内容" in printed
    run = json.loads((out / "last" / "config.json").read_text(encoding="utf-8"))["run"]
    s = run["sizing"]
    # 数得对：单轮对话的每个窗口 = 它的字数 + 对话格式固定的几个特殊词元（按一段两字的对话量出来）
    overhead = len(render_conversation(["问", "答"], load_tokenizer(out / "last"))[0]) - 2
    assert s["corpus_tokens"] == chars + DIALOGUES * overhead
    assert s["depth"] in sizing.DEPTHS and run["model"]["n_layers"] == s["depth"]
    assert "按预算定大小 (auto size)" in printed and f"语料每 epoch {s['corpus_tokens'] / 1e6:.2f}M 个词元" in printed
    # 1 秒多的预算：远远走不完一个 epoch，时间才是瓶颈
    assert not s["data_limited"] and "时间才是瓶颈 (compute-limited)" in printed
    assert run["train"]["compile"] is False
    # 内存：45 万段读进来、渲染、写词元缓存、训练，除去模型本身（权重、梯度、AdamW 的两份状态，每个参数 16 字节）
    # 不到 3 GB：单独跑时量到 0.7–0.9 GB（其中 torch 本身约 0.2 GB），一次整套测试里量到过 2.1 GB（原因还没查清，
    # 断言失败时写出选的大小）。真的"爆"是每个词元一个 Python 对象、整份语料复制几遍那种，要好几 GB。
    model_mb = 16 * s["params"] / 2**20
    assert peak_mb < 3000 + model_mb, f"内存峰值 {peak_mb} MB（选了 depth {s['depth']}，{s['params']:,} 个参数）"


def test_data_or_time_limit_is_reported_right_at_450k_dialogues(big_run):
    """同样 45 万段（约 800 万个词元）：慢的机器 5 分钟，时间是瓶颈；快 1000 倍的机器 30 分钟，数据是瓶颈，并说要多少倍数据。"""
    out, _, _, _ = big_run
    corpus = json.loads((out / "last" / "config.json").read_text(encoding="utf-8"))["run"]["sizing"]["corpus_tokens"]
    kwargs = dict(vocab_size=3000, corpus_tokens=corpus, device=torch.device("cpu"), compile=False)
    laptop = sizing.size_for_budget(lambda: iter([]), minutes=5, measure=fake_measure(2e10), **kwargs)
    assert not laptop.data_limited and laptop.epochs < sizing.MAX_EPOCHS
    gpu = sizing.size_for_budget(lambda: iter([]), minutes=30, measure=fake_measure(2e13), **kwargs)
    assert gpu.data_limited and gpu.depth > gpu.compute_optimal_depth and gpu.more_data > 1
    assert gpu.epochs <= sizing.MAX_EPOCHS * 1.01
    assert f"再多约 {gpu.more_data:.1f} 倍数据" in "\n".join(gpu.lines())
