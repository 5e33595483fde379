"""扩展性基准 (scaling)：序列长度翻倍 (128 → 1024) 与批大小翻倍时，训练的 tokens/s 与峰值内存怎样变。

    python benchmarks/scaling.py [--steps 3]

study 预设的模型（d_model 512，4 层），fp32，真正的 TransformerTrainer.train_step；数据是 lccc_20k.conv 打包成的批次。
- 序列长度：批大小固定 8，seq_len = 128/256/512/1024（模型的 max_len 随之设定）；
- 批大小：seq_len 固定 256，批 = 4/8/16/32。
每词元的矩阵乘法 FLOPs 与长度无关，注意力的 FLOPs 随 T 线性增长（每词元 12·L·T·d），所以长序列的 tokens/s 会慢慢下降；
激活 (activations) 的内存随 批 × T 线性增长，注意力本身用的是分块的 flash 实现，不存 T×T 的矩阵。
"训练占用" = 峰值内存 − 建模型之前的内存（模型 + 梯度 + AdamW 状态 + 激活）。
表格打印出来，追加到 benchmarks/results/scaling.jsonl，图存为 benchmarks/results/scaling.png。
"""
from __future__ import annotations

import argparse
import statistics

import torch

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import (
    RESULTS,
    SHARED_DATA,
    append_results,
    matmul_peak,
    peak_rss_mb,
    print_machine,
    print_table,
    reset_peak_rss,
    rss_mb,
)
from train_throughput import make_trainer, model_flops_per_token, run_steps

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.corpus.read import read_dialogues
from studygpt.recipes.presets import get_preset
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import PAD


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(SHARED_DATA / "lccc_20k.conv"))
    p.add_argument("--steps", type=int, default=3, help="每种设置计时的步数（另有 1 步预热），取中位数")
    p.add_argument("--seq-lens", type=int, nargs="+", default=[128, 256, 512, 1024])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    return p.parse_args()


def measure(dialogues, tokenizer, batch_size: int, seq_len: int, steps: int, peak: float) -> dict:
    """一种 (批大小, 序列长度)：按 seq_len 切窗口、打包，建模型（max_len = seq_len），预热 1 步后计时。"""
    study = get_preset("study")
    preset = {"model": {**study["model"], "max_len": seq_len}, "train": {**study["train"], "seq_len": seq_len}}
    batches = PackedBatches(build_windows(dialogues, tokenizer, seq_len), batch_size, seq_len,
                            tokenizer.token_id(PAD), seed=0)
    reset_peak_rss()
    before = rss_mb()  # 数据已在内存里；之后多出来的是模型、优化器状态和激活
    trainer = make_trainer(tokenizer, batches, preset, "cpu", amp=False, compile_=False)
    _, flops_per_token = model_flops_per_token(trainer.model, seq_len)
    it = batches.iter_from(0)
    run_steps(trainer, it, 1, "cpu")
    r = run_steps(trainer, it, steps, "cpu")
    step_s = statistics.median(r["step_times"])  # 中位数：个别被别的进程拖慢的步不算数
    tps = r["tokens"] / steps / step_s
    return {"batch_size": batch_size, "seq_len": seq_len, "tokens_per_s": round(tps, 1),
            "step_s": round(step_s, 3), "mfu": round(tps * flops_per_token / 1e9 / peak, 4),
            "peak_rss_mb": round(peak_rss_mb()), "training_mb": round(peak_rss_mb() - before)}


def plot(seq_rows: list[dict], batch_rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, rows, key, label in [(axes[0], seq_rows, "seq_len", "sequence length T (batch 8)"),
                                 (axes[1], batch_rows, "batch_size", "batch size B (T = 256)")]:
        x = [r[key] for r in rows]
        ax.plot(x, [r["tokens_per_s"] for r in rows], "o-", color="tab:blue")
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(v) for v in x])
        ax.set_xlabel(label)
        ax.set_ylabel("tokens/s", color="tab:blue")
        ax.set_ylim(bottom=0)
        mem = ax.twinx()
        mem.plot(x, [r["peak_rss_mb"] / 1024 for r in rows], "s--", color="tab:red")
        mem.set_ylabel("peak RSS (GB)", color="tab:red")
        mem.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle("StudyGPT study preset (d=512, 4 layers), fp32 training on this CPU")
    fig.tight_layout()
    fig.savefig(RESULTS / "scaling.png", dpi=100)
    plt.close(fig)
    print(f"图 (plot): {RESULTS / 'scaling.png'}")


def main() -> None:
    args = parse_args()
    machine = print_machine("扩展性 (scaling)")
    peak, _ = matmul_peak(torch.float32)
    print(f"实测峰值 (measured peak) fp32: {peak:.1f} GFLOP/s")
    dialogues, _ = read_dialogues(args.data)
    tokenizer = Tokenizer().build_vocab((t for d in dialogues for t in d), max_vocab_size=10000)
    seq_rows = [measure(dialogues, tokenizer, 8, t, args.steps, peak) for t in args.seq_lens]
    batch_rows = [measure(dialogues, tokenizer, b, 256, args.steps, peak) for b in args.batch_sizes]
    headers = ["批 B", "长度 T", "tokens/s", "s/step", "MFU", "峰值内存 MB", "训练占用 MB"]
    for title, rows in [("序列长度翻倍 (batch 8)", seq_rows), ("批大小翻倍 (T = 256)", batch_rows)]:
        print(f"\n{title}，峰值 {peak:.0f} GFLOP/s：")
        print_table(headers, [[r["batch_size"], r["seq_len"], f"{r['tokens_per_s']:,.0f}", r["step_s"],
                               f"{r['mfu']:.1%}", r["peak_rss_mb"], r["training_mb"]] for r in rows])
    plot(seq_rows, batch_rows)
    append_results("scaling", machine, [{"sweep": "seq_len", "peak_gflops": peak, **r} for r in seq_rows]
                   + [{"sweep": "batch_size", "peak_gflops": peak, **r} for r in batch_rows], record=True)


if __name__ == "__main__":
    main()
