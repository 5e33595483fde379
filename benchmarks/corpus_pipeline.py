"""语料流水线基准 (corpus pipeline)：45 万段对话（约 60 MB，小黄鸡的规模）从文件到第一个训练批次要多久、多少内存。

    python benchmarks/corpus_pipeline.py [--dialogues 450000] [--train-steps 20 --train-preset tiny]

1. 在临时文件夹里生成一个合成的 .conv（字符按齐夫分布 (Zipf) 抽自 5000 个汉字，每段 2 或 4 句），结束后删除；
2. 第一次运行（没有缓存）：读语料 → 留出验证集 → 建词表 → 渲染窗口（并写词元缓存）→ 打包出第一个批次；
3. 第二次运行（命中缓存）：同样的步骤，但窗口直接从内存映射的词元缓存读（见 studygpt/batches/windows.py）；
   然后真的训练 --train-steps 步（TransformerTrainer，含训练前的预测与验证），看整条路的峰值内存有没有界。
每次运行都在单独的子进程里，所以峰值内存 (peak RSS) 是那一次运行自己的。步骤与 recipes/train.py 的 build_trainer 相同。
目标：第一次 < 60 秒、峰值内存 < 2 GB；第二次几秒内开始训练。结果追加到 benchmarks/results/corpus_pipeline.jsonl。
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import append_results, peak_rss_mb, print_machine, print_table


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dialogues", type=int, default=450_000)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--train-steps", type=int, default=20, help="第二次运行之后训练几步（0 = 不训练）")
    p.add_argument("--train-preset", default="tiny")
    p.add_argument("--child", nargs=3, metavar=("CORPUS", "CACHE", "STEPS"), help=argparse.SUPPRESS)  # 子进程：跑一次流水线
    return p.parse_args()


# ===== 1. 合成语料 (synthetic corpus) =====
def write_synthetic_conv(path: Path, n: int, seed: int = 0) -> None:
    """n 段对话：每段 2 或 4 句（平均 2.5），每句 3–30 个字（45 万段约 60 MB）；字频近似齐夫分布，像真实中文。"""
    rng = np.random.default_rng(seed)
    alphabet = np.array([chr(0x4E00 + i) for i in range(5000)] + list("，。？！～abcXYZ0123456789 "))
    p = 1.0 / np.arange(1, len(alphabet) + 1) ** 1.1
    turns = rng.choice([2, 2, 2, 4], size=n)
    lengths = rng.integers(3, 31, size=int(turns.sum()))
    text = "".join(alphabet[rng.choice(len(alphabet), size=int(lengths.sum()), p=p / p.sum())])
    ends = np.cumsum(lengths)
    lines, u = [], 0
    for t in turns:
        lines.append("E")
        lines += [f"M {text[ends[u + k] - lengths[u + k]:ends[u + k]]}" for k in range(t)]
        u += t
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ===== 2. 一次运行（在子进程里）=====
def run_pipeline(corpus: str, cache: str, seq_len: int, train_steps: int = 0, preset: str = "tiny") -> dict:
    """与 recipes/train.py 的 build_trainer 相同的数据步骤，逐步计时；返回各步秒数、数量与峰值内存。"""
    from studygpt.batches.packing import PackedBatches
    from studygpt.batches.windows import cached_windows
    from studygpt.corpus.read import read_dialogues, split_validation
    from studygpt.tokenizer.char import Tokenizer
    from studygpt.tokenizer.specials import PAD

    times, messages = {}, []
    t0 = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        times[name] = round(now - last, 2)
        last = now

    dialogues, _ = read_dialogues(corpus)
    lap("read_s")
    train, val = split_validation(dialogues)
    lap("split_s")
    tokenizer = Tokenizer().build_vocab((t for d in train for t in d), max_vocab_size=10000)
    lap("vocab_s")
    split = {"val": None, "val_fraction": 0.02}
    windows = cached_windows(Path(cache) / "train", [corpus], train, tokenizer, seq_len, split, messages.append)
    val_windows = cached_windows(Path(cache) / "val", [corpus], val, tokenizer, seq_len, split, messages.append)
    lap("windows_s")
    batches = PackedBatches(windows, 16, seq_len, tokenizer.token_id(PAD), seed=0)
    first = next(iter(batches))
    lap("pack_and_first_batch_s")
    pipeline_peak, total = round(peak_rss_mb()), round(time.perf_counter() - t0, 2)
    trained = train_some_steps(batches, val_windows, tokenizer, seq_len, train_steps, preset) if train_steps else {}
    return {**times, **trained, "total_s": total, "peak_rss_mb": pipeline_peak,
            "dialogues": len(dialogues), "windows": len(windows), "tokens": int(batches.lengths.sum()),
            "vocab": tokenizer.vocab_size, "batches_per_epoch": len(batches),
            "first_batch": list(first["input_ids"].shape),
            "cache_hit": any("命中" in m for m in messages)}


def train_some_steps(batches, val_windows, tokenizer, seq_len: int, steps: int, preset_name: str) -> dict:
    """在这份 45 万段对话的批次上真的训练几步（和 `studygpt train` 同一个 TransformerTrainer）。"""
    from studygpt.batches.packing import PackedBatches
    from studygpt.model.transformer import DialogueModel, ModelConfig
    from studygpt.recipes.presets import get_preset
    from studygpt.tokenizer.specials import PAD
    from studygpt.training.trainer import TransformerTrainer
    preset = get_preset(preset_name)
    model = DialogueModel(config=ModelConfig(vocab_size=tokenizer.vocab_size, **{**preset["model"], "max_len": seq_len}))
    val = PackedBatches(val_windows, 16, seq_len, tokenizer.token_id(PAD), shuffle=False, drop_last=False)
    config = {**preset["train"], "seq_len": seq_len, "max_steps": steps, "eval_batches": 4}
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="studygpt-corpus-run-") as out:
        t0 = time.perf_counter()
        summary = TransformerTrainer(model, batches, "cpu", config, val_loader=val, tokenizer=tokenizer, out_dir=out,
                                     progress=False, log=lines.append).train()
    return {"train_preset": preset_name, "train_steps": summary["steps"], "train_s": round(time.perf_counter() - t0, 1),
            "train_tokens_per_s": round(summary["tokens_per_s"]), "peak_rss_with_training_mb": round(peak_rss_mb()),
            "forecast": [line.strip() for line in lines if "预测" in line or "内存估计" in line or "每个 epoch" in line]}


def run_child(corpus: Path, cache: Path, seq_len: int, train_steps: int = 0) -> dict:
    """在新的 Python 进程里跑一次流水线（峰值内存只算这一次），读回它打印的 JSON。"""
    out = subprocess.run([sys.executable, __file__, "--seq-len", str(seq_len), "--child", str(corpus), str(cache),
                          str(train_steps)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"子进程失败 (child failed):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


# ===== 3. 主程序 =====
def main() -> None:
    args = parse_args()
    if args.child:
        corpus, cache, steps = args.child
        print(json.dumps(run_pipeline(corpus, cache, args.seq_len, int(steps), args.train_preset), ensure_ascii=False))
        return
    machine = print_machine("语料流水线 (corpus pipeline)")
    with tempfile.TemporaryDirectory(prefix="studygpt-corpus-") as tmp:
        corpus, cache = Path(tmp) / "synthetic.conv", Path(tmp) / "token_cache"
        t0 = time.perf_counter()
        write_synthetic_conv(corpus, args.dialogues)
        size_mb = corpus.stat().st_size / 2**20
        print(f"合成语料 (synthetic corpus): {args.dialogues:,} 段对话，{size_mb:.1f} MB（生成用了 {time.perf_counter() - t0:.1f}s）")
        cold = run_child(corpus, cache, args.seq_len)
        cache_mb = folder_mb(cache)
        warm = run_child(corpus, cache, args.seq_len, args.train_steps)
    stages = ["read_s", "split_s", "vocab_s", "windows_s", "pack_and_first_batch_s", "total_s", "peak_rss_mb"]
    names = ["读语料 read", "留验证集 split", "建词表 vocab", "渲染窗口 windows", "打包+首批 pack", "合计 total s",
             "峰值内存 MB"]
    print(f"\n{cold['dialogues']:,} 段对话 → {cold['windows']:,} 个窗口、{cold['tokens']:,} 个词元，词表 {cold['vocab']:,}；"
          f"词元缓存 {cache_mb:.1f} MB（{'uint16' if cold['vocab'] < 65535 else 'int32'}）")
    print_table(["步骤 (stage)", "第一次 (no cache)", "第二次 (cache hit)"],
                [[n, cold[s], warm[s]] for n, s in zip(names, stages)])
    ok = cold["total_s"] < 60 and cold["peak_rss_mb"] < 2048
    print(f"目标 (target) < 60 s 且 < 2 GB：{'达到 (met)' if ok else '未达到 (missed)'}；第二次命中缓存: {warm['cache_hit']}")
    if args.train_steps:
        print(f"第二次之后训练 {warm['train_steps']} 步（{warm['train_preset']}）：{warm['train_s']} s，"
              f"{warm['train_tokens_per_s']:,} tokens/s，连同训练的峰值内存 {warm['peak_rss_with_training_mb']} MB")
        for line in warm["forecast"]:
            print("  " + line)
    common = {"dialogues": args.dialogues, "corpus_mb": round(size_mb, 1), "cache_mb": round(cache_mb, 1),
              "seq_len": args.seq_len}
    append_results("corpus_pipeline", machine, [{**common, "run": "first (no cache)", **cold},
                                                {**common, "run": "second (cache hit)", **warm}], record=True)


if __name__ == "__main__":
    main()
