"""内存预测对实测 (memory forecast vs measured peak)：训练开始前打印的内存估计准不准。

    python benchmarks/memory_forecast.py [--presets tiny study] [--steps 4] [--corpus ../shared/data/lccc_20k.conv]

每个预设在单独的子进程里走真正的 `studygpt train` 路径（run.build_trainer → TransformerTrainer.train）：
读语料、建词表、打包，训练 --steps 步（含验证与保存 best/、last/），然后比较训练这一段的
    预测 (forecast)：训练器在第一步之前估计的总内存（进程已用 + 梯度 + AdamW 状态 + 一个小批次的激活）
    实测 (measured)：CPU 上是进程的峰值常驻内存 (peak RSS, VmHWM)；CUDA 上是 torch.cuda.max_memory_allocated
目标：相差在 ±30% 以内。结果追加到 benchmarks/results/memory_forecast.jsonl。
没有共享语料时用合成语料（与 corpus_pipeline.py 同一个生成器）。
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import SHARED_DATA, append_results, peak_rss_mb, print_machine, print_table, reset_peak_rss


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "study"])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--corpus", default=str(SHARED_DATA / "lccc_20k.conv"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--child", metavar="PRESET", help=argparse.SUPPRESS)  # 子进程：训练一个预设
    return p.parse_args()


def run_preset(preset: str, corpus: str, steps: int, device: str) -> dict:
    """在本进程里走一遍 `studygpt train`，返回预测与实测的内存（MB）。"""
    import torch

    from studygpt.recipes.train import RunSpec, build_trainer, load_corpus
    with tempfile.TemporaryDirectory(prefix="studygpt-mem-") as out:
        spec = RunSpec(data=[corpus], out=out, preset=preset, device=device,
                       train={"max_steps": steps, "eval_batches": 4, "seed": 0})
        train, val = load_corpus(spec, log=lambda s: None)
        trainer = build_trainer(spec, train, val, log=lambda s: None, progress=False)
        del train, val
        reset_peak_rss()  # 只算训练这一段的峰值：读语料、建词表时的临时内存不算（预测也不含它们）
        summary = trainer.train()
        f = trainer.forecast
        measured = torch.cuda.max_memory_allocated() if trainer.device.type == "cuda" else peak_rss_mb() * 2**20
    return {"preset": preset, "device": str(trainer.device), "steps": summary["steps"], "params": f.params,
            "batch": trainer.config.batch_size, "seq_len": trainer.config.seq_len,
            "forecast_mb": round(f.memory_total / 2**20), "measured_mb": round(measured / 2**20),
            "parts_mb": {k: round(v / 2**20) for k, v in f.memory.items()},
            "ratio": round(measured / f.memory_total, 3)}


def synthetic_corpus(folder: Path) -> str:
    from corpus_pipeline import write_synthetic_conv
    path = folder / "synthetic_20k.conv"
    write_synthetic_conv(path, 20_000)
    return str(path)


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(run_preset(args.child, args.corpus, args.steps, args.device), ensure_ascii=False))
        return
    machine = print_machine("内存预测对实测 (memory forecast vs measured)")
    with tempfile.TemporaryDirectory(prefix="studygpt-memcorpus-") as tmp:
        corpus = args.corpus if Path(args.corpus).is_file() else synthetic_corpus(Path(tmp))
        print(f"语料 (corpus): {corpus}，每个预设训练 {args.steps} 步（单独的子进程）")
        results = []
        for preset in args.presets:
            out = subprocess.run([sys.executable, __file__, "--child", preset, "--corpus", corpus,
                                  "--steps", str(args.steps), "--device", args.device], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"子进程失败 (child failed):\n{out.stderr}")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print_table(["预设", "设备", "批 × 长", "参数", "预测 MB", "实测峰值 MB", "实测/预测", "±30%"],
                [[r["preset"], r["device"], f"{r['batch']}×{r['seq_len']}", f"{r['params']:,}", r["forecast_mb"],
                  r["measured_mb"], r["ratio"], "✓" if 0.7 <= r["ratio"] <= 1.3 else "✗"] for r in results])
    for r in results:
        print(f"  {r['preset']}: " + " + ".join(f"{k} {v}" for k, v in r["parts_mb"].items()))
    append_results("memory_forecast", machine, [{**r, "corpus": Path(corpus).name} for r in results], record=True)


if __name__ == "__main__":
    main()
