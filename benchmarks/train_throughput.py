"""训练吞吐量基准 (training throughput)：有用词元/秒、实际 FLOP/s、MFU，以及一个训练步的时间都花在哪。

    python benchmarks/train_throughput.py                    # CPU：fp32 不编译 / 编译（bf16 只在 CPU 真有 bf16 指令时）
    python benchmarks/train_throughput.py --device cuda      # GPU：bf16 autocast + torch.compile，对比 GPU 的 bf16 峰值
    python benchmarks/train_throughput.py --steps 2 --no-compile --no-profile   # 调试用的快速版

数据：../shared/data/lccc_20k.conv → 词表（最多 10000）→ build_windows → PackedBatches（study 预设，seq_len 256，批 16）。
每一步走真正的 TransformerTrainer.train_step（lm_loss → 反向 → 梯度裁剪 → AdamW），计时包含建批次的时间。

同一个进程里还计时一个参照：nanoGPT 写法的小 GPT（ReferenceGPT：学习的位置嵌入、LayerNorm、GELU、
因果的融合注意力 is_causal、整段序列都算损失），形状与 study 相同，随机词元、同样的精度与编译设置，
打印"训练器 ÷ 参照"的 tokens/s 倍数（同一次运行量的，机器忙闲对两者一样）。--no-reference 跳过。

MFU (model FLOPs utilization) = 有用词元/秒 × (6·N + 12·L·T·d) ÷ 同一次运行实测的矩阵乘法峰值。
N = 全部矩阵乘法权重（含输出层）；T = seq_len。这是 PaLM 论文的"模型 FLOPs"口径：它按"每个词元都过输出层、
注意力看满 T 个位置"来数，而 lm_loss 只在有标签的位置算输出层，所以真正执行的乘加略少（打印的 labelled 比例可估算）。
结果追加到 benchmarks/results/train_throughput.jsonl。这是脚本，不是测试。
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import (
    SHARED_DATA,
    append_results,
    fast_bf16,
    matmul_peak,
    peak_rss_mb,
    print_machine,
    print_table,
    reset_peak_rss,
)
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.corpus.read import read_dialogues
from studygpt.model import transformer as model_module
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.recipes.presets import get_preset
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import PAD
from studygpt.training.trainer import TransformerTrainer

DATA_RANGE = "data: build batch"  # 建批次的时间在 profiler 里用这个名字标出来


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(SHARED_DATA / "lccc_20k.conv"))
    p.add_argument("--preset", default="study")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, default=8, help="计时的训练步数（每种设置），取每步时间的中位数")
    p.add_argument("--warmup", type=int, default=2, help="不计时的预热步数（编译发生在第一步）")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True, help="也测 torch.compile")
    p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True, help="用 torch.profiler 分解一个训练步")
    p.add_argument("--dense-mask", action="store_true",
                   help="GPU 上也用稠密的文档掩码（不用 FlexAttention），对照用")
    p.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                   help="也计时 nanoGPT 写法的参照 GPT，打印训练器 ÷ 参照的倍数")
    return p.parse_args()


# ===== 1. 数据与模型 =====
def prepare_data(path: str, preset: dict, batch_size: int):
    """读语料、建词表、切窗口、打包；返回 (tokenizer, PackedBatches, 各阶段耗时)。"""
    times = {}
    t0 = time.perf_counter()
    dialogues, _ = read_dialogues(path)
    times["read_s"] = time.perf_counter() - t0
    tokenizer = Tokenizer().build_vocab((t for d in dialogues for t in d), max_vocab_size=preset["max_vocab_size"])
    t0 = time.perf_counter()
    seq_len = preset["train"]["seq_len"]
    windows = build_windows(dialogues, tokenizer, seq_len)
    times["windows_s"] = time.perf_counter() - t0
    batches = PackedBatches(windows, batch_size, seq_len, tokenizer.token_id(PAD), seed=0)
    print(f"数据 (data): {len(dialogues):,} 段对话 → {len(windows):,} 个窗口 → 每 epoch {len(batches)} 个批次 "
          f"({batch_size}×{seq_len})；词表 {tokenizer.vocab_size:,}；"
          f"读 {times['read_s']:.1f}s，切窗口 {times['windows_s']:.1f}s")
    return tokenizer, batches, times


def model_flops_per_token(model: DialogueModel, seq_len: int) -> tuple[int, float]:
    """(N, 每词元训练 FLOPs)。6·N：前向 2N + 反向 4N；12·L·T·d：注意力的 QKᵀ 与 AV（前向 + 反向）。"""
    c = model.config
    n = sum(p.numel() for p in model.parameters() if p.dim() == 2)  # 全部矩阵（输出层与嵌入共享，算一次）
    return n, 6 * n + 12 * c.n_layers * seq_len * c.d_model


def make_trainer(tokenizer, batches, preset: dict, device: str, amp: bool, compile_: bool) -> TransformerTrainer:
    """与 `studygpt train` 相同的模型与训练器（同一随机种子），只是不写文件、不打印。"""
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=tokenizer.vocab_size, **preset["model"]))
    config = {**preset["train"], "batch_size": batches.batch_size, "use_amp": amp, "compile": compile_,
              "max_steps": 10_000}
    out = Path(tempfile.gettempdir()) / "studygpt-bench-unused"  # 训练器要一个输出目录；只有 train() 才会建它、写它，这里不调用
    return TransformerTrainer(model, batches, device, config, tokenizer=tokenizer, out_dir=out, progress=False,
                              log=lambda text: None)


# ===== 2. 计时 =====
def measure_peaks(precisions: list[str], device: str) -> dict:
    """每种精度的矩阵乘法峰值 (GFLOP/s)：CPU 上 n = 1024/2048/3072 的方阵，GPU 上 4096/8192。"""
    sizes = (4096, 8192) if device == "cuda" else (1024, 2048, 3072)
    peaks = {}
    for prec in precisions:
        gflops, size = matmul_peak(torch.bfloat16 if prec == "bf16" else torch.float32, device, sizes)
        peaks[prec] = gflops
        print(f"实测峰值 (measured peak) {prec}: {gflops:.1f} GFLOP/s（{size}×{size} 矩阵乘法，{torch.get_num_threads()} 线程）")
    return peaks


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_steps(trainer: TransformerTrainer, batches, n: int, device: str) -> dict:
    """跑 n 个训练步（含建批次），返回总墙钟时间、每步时间与词元数。"""
    real = labelled = padded = 0
    times, cpu_times = [], []
    for _ in range(n):
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        with record_function(DATA_RANGE):
            batch = next(batches)
        stats = trainer.train_step([batch])
        sync(device)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        real += stats["tokens"]
        padded += batch["input_ids"].numel()
        labelled += int((batch["labels"][:, 1:] != -100).sum())
    return {"seconds": sum(times), "step_times": times, "cpu_times": cpu_times, "tokens": real, "padded": padded,
            "labelled": labelled}


def measure_mode(name: str, trainer: TransformerTrainer, args, flops_per_token: float) -> dict:
    """一种设置（精度 × 是否编译）：预热（编译在这里发生），再计时 args.steps 步。"""
    batches = trainer.train_loader.iter_from(0)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    reset_peak_rss()
    t0 = time.perf_counter()
    run_steps(trainer, batches, args.warmup, args.device)
    warmup_s = time.perf_counter() - t0
    r = run_steps(trainer, batches, args.steps, args.device)
    # 用每步时间的中位数 (median)：虚拟机偶尔被别的进程抢走 CPU，个别慢步不该拉低"这台机器能做到的"速度
    step_s = statistics.median(r["step_times"])
    tps = r["tokens"] / args.steps / step_s
    flops = tps * flops_per_token
    mem = torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else peak_rss_mb()
    # CPU 上再记每步的 CPU 时间 (process_time)：机器被别的进程占着时，墙上时间变慢很多，CPU 时间受的影响小得多
    cpu_tps = r["tokens"] / args.steps / statistics.median(r["cpu_times"])
    return {"mode": name, "tokens_per_s": round(tps, 1), "tokens_per_cpu_s": round(cpu_tps, 1), "step_s": round(step_s, 3),
            "step_s_min_max": [round(min(r["step_times"]), 3), round(max(r["step_times"]), 3)],
            "tokens_per_s_mean": round(r["tokens"] / r["seconds"], 1),
            "achieved_gflops": round(flops / 1e9, 1),
            "padding": round(1 - r["tokens"] / r["padded"], 4),
            "labelled_fraction": round(r["labelled"] / r["tokens"], 3),
            "peak_mem_mb": round(mem), "warmup_s": round(warmup_s, 1), "steps": args.steps}


# ===== 2b. 参照：nanoGPT 写法的 GPT (reference) =====
class ReferenceBlock(nn.Module):
    """nanoGPT 的 Block：LayerNorm → 因果自注意力（融合内核 is_causal）→ 残差；LayerNorm → GELU MLP (4C) → 残差。"""

    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)   # (B, nh, T, hs)
                   for t in self.c_attn(self.ln_1(x)).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp(self.ln_2(x))


class ReferenceGPT(nn.Module):
    """nanoGPT 的 GPT（GPT-2 结构）：词嵌入 + 学习的位置嵌入，n_layers 个块，输出层与词嵌入共享；损失算整段序列。"""

    def __init__(self, vocab_size: int, d_model: int, n_head: int, n_layers: int, max_len: int, **_):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, d_model), nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(ReferenceBlock(d_model, n_head) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # (B, T, V)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))


def measure_reference(vocab_size: int, preset: dict, args, amp: bool, compiled: bool, seq_len: int) -> dict:
    """同样的批大小、序列长度、精度与编译设置，计时参照 GPT 的训练步（前向 + 反向 + 梯度裁剪 + AdamW）。"""
    torch.manual_seed(0)
    model = ReferenceGPT(vocab_size, **{**preset["model"], "max_len": seq_len}).to(args.device)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    tokens = torch.randint(vocab_size, (args.batch_size, seq_len + 1), device=args.device)
    ctx = torch.autocast(args.device, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        sync(args.device)
        t0, c0 = time.perf_counter(), time.process_time()
        with ctx:
            loss = forward(tokens[:, :-1], tokens[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(args.device)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    step_s = statistics.median(times[args.warmup:])
    n = sum(p.numel() for p in model.parameters() if p.dim() == 2 and p is not model.wpe.weight)
    c = preset["model"]
    flops_per_token = 6 * n + 12 * c["n_layers"] * seq_len * c["d_model"]
    tps = args.batch_size * seq_len / step_s
    cpu_tps = args.batch_size * seq_len / statistics.median(cpu_times[args.warmup:])
    return {"tokens_per_s": round(tps, 1), "tokens_per_cpu_s": round(cpu_tps, 1), "step_s": round(step_s, 3),
            "matmul_weights": n,
            "achieved_gflops": round(tps * flops_per_token / 1e9, 1), "warmup_s": round(sum(times[:args.warmup]), 1)}


# ===== 3. 一个训练步的分解 (profile breakdown) =====
CATEGORIES = [  # (类别, 判断事件名的规则)；从事件自己往上找它的父事件，第一个命中的规则决定类别
    ("data", lambda n: n == DATA_RANGE),
    ("optimizer", lambda n: n.startswith("Optimizer.") or n in {"aten::_foreach_norm", "aten::linalg_vector_norm",
                                                               "aten::_foreach_mul_", "aten::stack"}),
    ("attention", lambda n: "scaled_dot_product" in n.lower() or "flash_attention" in n.lower()),
    ("matmul", lambda n: n in {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"}),
    ("loss", lambda n: "log_softmax" in n or "nll_loss" in n or "cross_entropy" in n),
    ("fused (compiled)", lambda n: "cpp_fused" in n or n.startswith(("graph_", "triton_"))),
]
LABELS = {"matmul": "矩阵乘法 matmul (aten::mm/addmm/bmm/linear)", "attention": "注意力 attention (SDPA 前向+反向)",
          "optimizer": "优化器 optimizer (AdamW + zero_grad + 梯度裁剪)", "data": "数据 data (建批次)",
          "loss": "损失 loss (log_softmax + nll)", "fused (compiled)": "编译融合的逐元素核 (compiled fused kernels)",
          "other ops": "其他算子 other ops (RoPE、SwiGLU、RMSNorm、复制…)", "python": "Python 与调度开销 (wall − Σ 算子时间)"}


def categorize(event) -> str:
    while event is not None:
        for cat, rule in CATEGORIES:
            if rule(event.name):
                return cat
        event = event.cpu_parent
    return "other ops"


def profile_breakdown(trainer: TransformerTrainer, args, steps: int = 2) -> dict:
    """用 torch.profiler 记录 steps 个训练步，把每个算子的"自身时间"(self time) 归到类别里，返回每步毫秒数。"""
    batches = trainer.train_loader.iter_from(args.warmup + args.steps + 1)
    run_steps(trainer, batches, 1, args.device)  # 先热身，避免把一次性的开销算进去
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    with profile(activities=activities) as prof:
        wall = run_steps(trainer, batches, steps, args.device)["seconds"]
    ms = {cat: 0.0 for cat in LABELS}
    for event in prof.events():  # GPU 上数每个算子发起的核函数在 GPU 上的时间，CPU 上数算子自身的 CPU 时间
        if args.device == "cuda" and event.device_type == DeviceType.CPU:
            ms[categorize(event)] += getattr(event, "self_device_time_total", 0) / 1e3
        elif args.device == "cpu":
            ms[categorize(event)] += event.self_cpu_time_total / 1e3
    ms["python"] = max(wall * 1e3 - sum(ms.values()), 0.0)  # GPU 上：GPU 空等的时间（Python、启动核函数、同步）
    return {cat: round(v / steps, 1) for cat, v in ms.items() if v > 0}


def print_breakdown(title: str, ms: dict) -> None:
    total = sum(ms.values())
    print(f"\n一个训练步的时间分解 (profile of one training step): {title}，共 {total:.0f} ms")
    rows = sorted(ms.items(), key=lambda kv: -kv[1])
    print_table(["类别 (category)", "ms/step", "%"], [[LABELS[c], f"{v:.0f}", f"{v / total:.1%}"] for c, v in rows])


# ===== 4. 主程序 =====
def main() -> None:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda：这台机器没有可用的 CUDA GPU。")
    if args.dense_mask:  # 对照：文档掩码总走稠密布尔掩码 + SDPA（model.uses_block_mask 是唯一的开关）
        model_module.uses_block_mask = lambda device, dropout: False
    machine = print_machine("训练吞吐量 (training throughput)")
    preset = get_preset(args.preset)
    tokenizer, batches, data_times = prepare_data(args.data, preset, args.batch_size)
    seq_len = preset["train"]["seq_len"]
    n, flops_per_token = model_flops_per_token(
        DialogueModel(config=ModelConfig(vocab_size=tokenizer.vocab_size, **preset["model"])), seq_len)
    print(f"模型 (model): {args.preset}，矩阵权重 N = {n / 1e6:.2f}M；每词元训练 FLOPs = 6N + 12·L·T·d = "
          f"{flops_per_token / 1e6:.1f}M；打包后填充比例 {batches.padding_fraction():.1%}")

    # 精度：CPU 上 fp32，bf16 只在真有 bf16 指令且实测更快时；GPU 上 bf16 autocast + 编译
    bf16_ok, bf16_reason = fast_bf16(args.device)
    if args.device == "cuda":
        plans = [("bf16", True)] if bf16_ok else [("fp32", False)]
        compile_modes = [True]
    else:
        plans = [("fp32", False)] + ([("bf16", True)] if bf16_ok else [])
        compile_modes = [False, True] if args.compile else [False]
    print(f"bf16: {'测 (measured)' if bf16_ok else '跳过 (skipped)'} — {bf16_reason}")
    peaks = measure_peaks([prec for prec, _ in plans], args.device)

    results, trainers = [], {}
    for prec, amp in plans:
        for compiled in compile_modes:
            name = f"{prec}{' + compile' if compiled else ''}"
            trainer = make_trainer(tokenizer, batches, preset, args.device, amp, compiled)
            try:
                record = measure_mode(name, trainer, args, flops_per_token)
            except Exception as exc:  # torch.compile 在 CPU 上需要 C++ 编译器；失败时说明原因，继续别的设置
                print(f"{name}: 失败 (failed) — {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                continue
            print(f"{name}: {record['tokens_per_s']:,.0f} tokens/s（预热/编译 {record['warmup_s']}s）")
            if args.reference:
                ref = measure_reference(tokenizer.vocab_size, preset, args, amp, compiled, seq_len)
                record["reference"] = ref
                record["vs_reference"] = round(record["tokens_per_s"] / ref["tokens_per_s"], 3)
                record["vs_reference_cpu_time"] = round(record["tokens_per_cpu_s"] / ref["tokens_per_cpu_s"], 3)
                print(f"{name} 参照 nanoGPT 写法 (reference GPT): {ref['tokens_per_s']:,.0f} tokens/s → "
                      f"训练器 ÷ 参照 = {record['vs_reference']:.2f}×（按 CPU 时间 {record['vs_reference_cpu_time']:.2f}×）")
            results.append({**record, "precision": prec})
            trainers[name] = trainer

    # 训练测完再测一次峰值，取两次中大的那个：虚拟机的 CPU 时快时慢，这样 MFU 不会因为峰值测低了而虚高
    again = measure_peaks([prec for prec, _ in plans], args.device)
    peaks = {prec: max(peaks[prec], again[prec]) for prec in peaks}
    for r in results:
        r["peak_gflops"] = round(peaks[r["precision"]], 1)
        r["mfu"] = round(r["achieved_gflops"] / peaks[r["precision"]], 4)
        if "reference" in r:
            r["reference"]["mfu"] = round(r["reference"]["achieved_gflops"] / peaks[r["precision"]], 4)

    print(f"\n{args.preset} 预设，批 {args.batch_size}×{seq_len}，每种设置计时 {args.steps} 步（tokens/s 按每步时间的中位数）：")
    print_table(["设置 (mode)", "tokens/s", "s/step (min–max)", "GFLOP/s", "峰值 peak", "MFU", "填充 pad", "峰值内存 MB"],
                [[r["mode"], f"{r['tokens_per_s']:,.0f}", "{} ({}–{})".format(r["step_s"], *r["step_s_min_max"]),
                  r["achieved_gflops"], r["peak_gflops"],
                  f"{r['mfu']:.1%}", f"{r['padding']:.1%}", r["peak_mem_mb"]] for r in results])
    print(f"（有标签、真正过输出层的位置占真实词元的 {results[0]['labelled_fraction']:.0%}）" if results else "")
    if any("reference" in r for r in results):
        print("\n训练器 vs nanoGPT 写法的参照（同一进程、同样的形状与设置；参照用随机词元、整段算损失、不建批次）：")
        print_table(["设置 (mode)", "训练器 tokens/s", "参照 tokens/s", "训练器 ÷ 参照", "按 CPU 时间", "训练器 MFU",
                     "参照 MFU"],
                    [[r["mode"], f"{r['tokens_per_s']:,.0f}", f"{r['reference']['tokens_per_s']:,.0f}",
                      f"{r['vs_reference']:.2f}×", f"{r['vs_reference_cpu_time']:.2f}×", f"{r['mfu']:.1%}",
                      f"{r['reference']['mfu']:.1%}"] for r in results if "reference" in r])

    breakdowns = {}
    if args.profile:
        for name in [r["mode"] for r in results]:
            breakdowns[name] = profile_breakdown(trainers[name], args)
            print_breakdown(name, breakdowns[name])
    common = {"preset": args.preset, "batch_size": args.batch_size, "seq_len": seq_len, "device": args.device,
              "document_mask": "flex" if model_module.uses_block_mask(torch.device(args.device), 0.0) else "dense",
              "matmul_weights": n, "flops_per_token": flops_per_token, "data": data_times,
              "peak_gflops": peaks}
    append_results("train_throughput", machine,
                   [{**common, **r, "profile_ms_per_step": breakdowns.get(r["mode"])} for r in results], record=True)


if __name__ == "__main__":
    main()
