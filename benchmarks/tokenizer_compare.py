"""分词器对比 (tokenizer comparison)：字符级 vs 字节级 BPE（两种词表大小），同样的模型、同样的 CPU 时间。

    OMP_NUM_THREADS=1 python benchmarks/tokenizer_compare.py [--cpu-minutes 3] [--preset tiny] [--bpe-sizes 4000 16000]
    python benchmarks/tokenizer_compare.py --quick     # 冒烟：内置语料、BPE 300、每种约 1 秒 CPU（检查脚本本身，数字无意义）
    OMP_NUM_THREADS=1 python benchmarks/tokenizer_compare.py --cpu-minutes 3 --jobs 2 --record   # 维护者：更新第 12 章的数字

训练语料 lccc_20k.conv + cdial_train_10k.conv，留出语料 cdial_valid_2k.conv（都在 ../shared/data）。每种分词器：
1. 在训练语料上训练分词器（字符级：全部出现过的字；BPE：合并到给定词表大小）；
2. 量：每个词元几个字符 (chars per token)、每句话几个词元、嵌入层占参数的比例 (embedding share)；
3. 同一个预设的模型、同样的 CPU 时间 (time.process_time) 训练：先用几步测出每步的 CPU 秒数，
   再按预算定 max_steps（学习率调度于是正好走完）；别的程序抢 CPU 时，墙钟时间会变长，CPU 时间基本不变；
4. 在整个留出语料上算每字符比特数 (bits per character, bpc)：每个字符平均要多少比特——与词表无关，可以直接比。

结果打印成表，写进 runs/benchmarks/tokenizer_compare.json（runs/ 不进 git）。加 --record 才写进仓库里的
benchmarks/results/tokenizer_compare.json：第 12 章的表来自它，第 12 章的图（docs/scripts/bpe_tokens.py 的右图）读它。
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import torch
from _common import (
    SHARED_DATA,
    load_average,
    print_machine,
    print_table,
    results_path,
    where,
)

from studygpt.corpus.builtin import builtin_conv_path
from studygpt.corpus.read import read_dialogues
from studygpt.recipes.train import RunSpec, build_trainer
from studygpt.tokenizer.lab import token_stats, train_tokenizer
from studygpt.training.validation import evaluate_loss

CALIBRATION_STEPS = 8  # 先跑几步测每步的 CPU 秒数（第一步较慢，不计）


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", nargs="+", default=[str(SHARED_DATA / "lccc_20k.conv"), str(SHARED_DATA / "cdial_train_10k.conv")])
    p.add_argument("--heldout", default=str(SHARED_DATA / "cdial_valid_2k.conv"))
    p.add_argument("--cpu-minutes", type=float, default=3.0, help="每种分词器的训练 CPU 时间预算（分钟）")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--bpe-sizes", type=int, nargs="+", default=[4000, 16000])
    p.add_argument("--char-vocab", type=int, default=10000, help="字符级词表上限（默认与 studygpt train 相同）")
    p.add_argument("--jobs", type=int, default=1, help="同时测几种分词器（各一个进程、一个线程；预算按各自的 CPU 时间算）")
    p.add_argument("--quick", action="store_true",
                   help="冒烟：训练用内置语料 studygpt_zh.conv、留出用 persona_zh.conv，BPE 300，每种 0.02 分钟 CPU")
    p.add_argument("--record", action="store_true", help="结果写进 benchmarks/results/tokenizer_compare.json（进 git）")
    args = p.parse_args()
    if args.quick:
        args.train, args.heldout = [str(builtin_conv_path())], str(builtin_conv_path().with_name("persona_zh.conv"))
        args.cpu_minutes, args.bpe_sizes = 0.02, [300]
    return args


def cpu_seconds_per_step(spec: RunSpec, train, val, tokenizer) -> float:
    """用一个一次性的训练器跑几步，测每步的 CPU 秒数（只测不留：之后重新建模型，初始权重相同）。"""
    trainer = build_trainer(spec, train, val, tokenizer=tokenizer, log=lambda text: None, progress=False)
    batches = iter(trainer.train_loader)
    trainer.train_step([next(batches)])
    start = time.process_time()
    for _ in range(CALIBRATION_STEPS):
        trainer.train_step([next(batches)])
    return (time.process_time() - start) / CALIBRATION_STEPS


def load_data(args) -> tuple[list, list]:
    return [d for path in args.train for d in read_dialogues(path)[0]], read_dialogues(args.heldout)[0]


def measure(kind: str, vocab_size: int, args) -> dict:
    """一种分词器的全部测量（在自己的进程里：读语料、训练分词器、训练模型、算留出 bpc）。"""
    torch.set_num_threads(1)  # 与 OMP_NUM_THREADS=1 一致：一个线程，CPU 时间才好比
    train, val = load_data(args)
    tokenizer = train_tokenizer([t for d in train for t in d], kind, vocab_size)
    name = "char" if kind == "char" else f"bpe-{vocab_size // 1000}k" if vocab_size >= 1000 else f"bpe-{vocab_size}"
    out = tempfile.mkdtemp(prefix=f"tokcmp-{name}-")
    texts = [t for d in val for t in d]
    stats = token_stats(tokenizer, texts)
    spec = RunSpec(data=args.train, out=f"{out}/{name}", preset=args.preset, val=args.heldout, device="cpu",
                   train={"eval_points": 2, "eval_batches": 5, "early_stop_patience": 0, "keep_best": False,
                          "check_memory": False})
    per_step = cpu_seconds_per_step(spec, train, val, tokenizer)
    spec.train["max_steps"] = max(int(args.cpu_minutes * 60 / per_step), 1)
    trainer = build_trainer(spec, train, val, tokenizer=tokenizer, log=lambda text: None, progress=False)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    summary = trainer.train()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    heldout = evaluate_loss(trainer.model, trainer.val_loader, tokenizer)  # 整个留出语料，不只前几批
    model = trainer.model
    embedding = model.tok_embeddings.weight.numel()
    record = {"tokenizer": name, "vocab_size": tokenizer.vocab_size, **stats,
              "params": model.num_params(), "embedding_share": embedding / model.num_params(),
              "steps": summary["steps"], "train_tokens": summary["tokens"], "cpu_s": cpu, "wall_s": wall,
              "tokens_per_cpu_s": summary["tokens"] / cpu, "chars_per_cpu_s": summary["tokens"] / cpu * stats["chars_per_token"],
              "heldout_bpc": heldout["bpc"], "heldout_loss_per_token": heldout["loss"], "heldout_tokens": heldout["tokens"],
              "heldout_chars": heldout["chars"]}
    shutil.rmtree(out, ignore_errors=True)
    print(f"  {name}: {summary['steps']} 步, CPU {cpu:.0f} 秒（墙钟 {wall:.0f} 秒），留出 bpc {heldout['bpc']:.3f}", flush=True)
    return record


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    machine = print_machine("分词器对比 (tokenizer comparison)")
    train, val = load_data(args)
    print(f"训练 {len(train):,} 段对话（{sum(len(t) for d in train for t in d):,} 个字符），留出 {len(val):,} 段；"
          f"预设 {args.preset}，每种分词器 {args.cpu_minutes:g} 分钟 CPU 时间，同时测 {args.jobs} 种", flush=True)
    candidates = [("char", args.char_vocab)] + [("bpe", n) for n in args.bpe_sizes]
    if args.jobs == 1:  # 一种接一种：在本进程里测，不必另起进程
        records = [measure(kind, size, args) for kind, size in candidates]
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            records = list(pool.map(measure, *zip(*candidates), [args] * len(candidates)))
    print_table(["分词器", "词表", "字符/词元", "每句词元 中位/95%", "嵌入占参数", "步数", "词元/CPU秒", "字符/CPU秒", "留出 bpc"],
                [[r["tokenizer"], f"{r['vocab_size']:,}", f"{r['chars_per_token']:.2f}",
                  f"{r['tokens_median']:.0f} / {r['tokens_p95']:.0f}", f"{r['embedding_share']:.0%}", r["steps"],
                  f"{r['tokens_per_cpu_s']:,.0f}", f"{r['chars_per_cpu_s']:,.0f}", f"{r['heldout_bpc']:.3f}"] for r in records])
    path = results_path("tokenizer_compare.json", args.record)
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {"preset": args.preset, "cpu_minutes": args.cpu_minutes, "train": args.train, "heldout": args.heldout,
                "jobs": args.jobs, "quick": args.quick, "load_1min_at_end": load_average()}
    path.write_text(json.dumps({**machine, "settings": settings, "results": records}, indent=2, ensure_ascii=False),
                    encoding="utf-8")
    print(f"结果 (results): {where(path, args.record)}")


if __name__ == "__main__":
    main()
