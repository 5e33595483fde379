"""GPU 检查 (GPU check)：一次量完第 13 号与第 19 号问题要的 GPU 数字，一块 GPU 上紧接着的两次调用，共约 12 分钟。

    python3 benchmarks/gpu_check.py [--data 语料.conv] [--skip-train] [--skip-dense]   # 第 19 号：1–3
    python3 benchmarks/gpu_check.py --only-recipe [--data-dir 语料目录]                 # 第 13 号：4
    python3 benchmarks/gpu_check.py --smoke [--recipe]    # 没有 GPU 时在 CPU 上用极小的设置把整个脚本走一遍（数字无意义，不写结果）

1. 文档掩码 (document mask)：CUDA 上 FlexAttention 路径与稠密掩码路径的 logits、损失与梯度相同；
2. 逐词解码 (decoding)：批大小 1、抽样，普通路径 vs CUDA graph（fast_decode，torch.compile reduce-overhead），
   报告编译时间、每秒词元数与倍数，并检查同一个种子两条路径生成的词元是否相同（抽样与贪心）；
3. 训练吞吐 (training)：benchmarks/train_throughput.py --device cuda --batch-size 256（bf16 + compile，
   真实训练器：打包 + 文档掩码走 FlexAttention），同一进程里计时 nanoGPT 写法的参照，打印倍数与 MFU；
   再用稠密掩码跑一次训练器作对照（--skip-dense 跳过）；
4. --recipe / --only-recipe：README 的 GPU 训练命令（study 预设，--batch-size 128 --epochs 10）在共享的真实语料上
   （lccc_20k、cdial_train_10k、subtitles/*，在 cdial_valid_2k 上验证），最多 --recipe-minutes 分钟（到时从外面停掉，
   不用 --max-minutes：那会让学习率按时间走，就不是 README 的命令了）；然后在 cdial_valid_2k 与 kdconv_dev_450 上评估留出 bpc，
   温度 0.7 生成几句回答，从 metrics.jsonl 读出 tokens/s、每个 epoch 的时间、验证损失在第几个 epoch 见底，
   打印一张能直接贴进 docs/training.md 的表，外加按实测速度推算的小黄鸡时间（标明是推算）。

每一部分做完就把结果追加到 benchmarks/results/gpu_check.jsonl（训练吞吐也追加到 train_throughput.jsonl），
设置了环境变量 OUT 时再复制一份到 $OUT（设备机器上的结果要从那里带回来）。一部分出错只记下错误，接着跑下一部分；
中途超时的话，已完成的部分仍然留着。

共享语料不在仓库里：在有 GPU 的会话里先把它放进一个被 git 忽略的目录，再随命令带过去。设备时间一共 15 分钟（含开机
一两分钟），机器在两次调用之间只热 30 秒，所以两次调用紧接着发，超时照下面设（设备上的 Python 叫 python3）：
    mkdir -p runs/gpu_data && cp -r ../shared/data/*.conv ../shared/data/subtitles runs/gpu_data/
    （device 工具）run(command="PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --data runs/gpu_data/lccc_20k.conv",
                      carry=["runs/gpu_data"], timeout_s=420)
    然后立刻 run(command="PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --only-recipe --data-dir runs/gpu_data",
                      carry=["runs/gpu_data"], timeout_s=300)
    时间紧时第一条加 --skip-dense（少一次编译）。
没有 GPU 时（不加 --smoke）只打印一句话并退出（退出码 2）。这是脚本，不是测试。
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from _common import REPO, SHARED_DATA, append_results, print_machine
from generate_speed import never_ending, vocab_10k

from studygpt.generation.fast_decode import compile_decoding
from studygpt.generation.generate import SamplingConfig, generate_response, generate_tokens
from studygpt.model import transformer as model_module
from studygpt.model.checkpoint import load_model
from studygpt.model.transformer import DialogueModel, ModelConfig, lm_loss
from studygpt.recipes.presets import get_preset

HERE = Path(__file__).parent
XIAOHUANGJI_TOKENS = 11_000_000  # README：小黄鸡约 45 万段 × 约 24 个词元；用来把实测速度换算成"一个 epoch 约几分钟"
PROMPTS = ["你好", "你叫什么名字？", "今天天气怎么样？", "你喜欢看电影吗？", "晚上吃什么？"]  # 与 docs/training.md §7 相同


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(SHARED_DATA / "lccc_20k.conv"), help="训练吞吐用的语料")
    p.add_argument("--data-dir", default=str(SHARED_DATA), help="--recipe 用的语料目录（共享语料的布局）")
    p.add_argument("--skip-train", action="store_true", help="不测训练吞吐")
    p.add_argument("--skip-dense", action="store_true", help="不测稠密掩码的训练器对照")
    p.add_argument("--recipe", action="store_true", help="最后也跑 README 的 GPU 训练命令（第 13 号问题）")
    p.add_argument("--only-recipe", action="store_true", help="只跑 README 的 GPU 训练命令")
    p.add_argument("--recipe-minutes", type=float, default=3.5,
                   help="训练命令最多跑几分钟（到时停掉它，已写下的曲线与 best/ 照样汇总）")
    p.add_argument("--smoke", action="store_true",
                   help="CPU 上用极小的设置走一遍整个脚本，检查脚本本身（数字无意义，不追加结果）")
    return p.parse_args()


class Check:
    """这次检查的设置：真检查在 CUDA 上用 study 的大小；--smoke 在 CPU 上用极小的大小。"""

    def __init__(self, smoke: bool):
        self.smoke = smoke
        self.device = torch.device("cpu" if smoke else "cuda")
        self.reply = 12 if smoke else 200          # 每次生成多少个词元
        self.decode_model = {"n_layers": 1, "d_model": 64, "n_head": 2} if smoke else get_preset("study")["model"]
        self.seq_len = 64 if smoke else 256
        self.machine: dict = {}                    # print_machine 的结果，写进每条记录

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def copy_to_out(path: Path, name: str) -> None:
    """设置了环境变量 OUT（设备机器）时，把文件复制到 $OUT/name，结果才带得回来。"""
    out = os.environ.get("OUT")
    if out and path.is_file() and os.environ.get("BENCH_DRY_RUN") != "1":
        shutil.copy(path, Path(out) / name)


def save(check: Check, records: list[dict]) -> None:
    """追加到 benchmarks/results/gpu_check.jsonl，并把结果文件复制到 $OUT（有的话）。--smoke 不追加（BENCH_DRY_RUN）。"""
    append_results("gpu_check", check.machine, records, record=True)
    for name in ("gpu_check.jsonl", "train_throughput.jsonl"):
        copy_to_out(HERE / "results" / name, name)


def part(check: Check, name: str, run) -> None:
    """跑一部分并保存；出错时记下错误、接着跑下一部分（GPU 的时间很宝贵，一处出错不该让后面的都白等）。"""
    try:
        records = run()
    except Exception as exc:  # noqa: BLE001  任何错误都只让这一部分失败
        print(f"{name} 出错 (failed): {type(exc).__name__}: {exc}", flush=True)
        records = [{"part": name, "error": f"{type(exc).__name__}: {exc}"[:500]}]
    save(check, records if isinstance(records, list) else [records])


# ===== 1. 文档掩码：FlexAttention = 稠密掩码 =====
def check_document_mask(check: Check) -> dict:
    """study 形状的小批次（每行打包几段对话 + 填充）：两条路径的 logits、损失、梯度的最大差。"""
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=1000, n_layers=2)).to(check.device)
    B, T = 4, check.seq_len
    cuts = torch.randint(1, T, (B, 5)).sort(-1).values
    doc_ids = (torch.arange(T)[None, :, None] >= cuts[:, None, :]).sum(-1)  # (B, T)：每行 6 段
    doc_ids[:, -17:] = -1                                                     # 末尾填充
    starts = torch.cat([torch.zeros(B, 1, dtype=torch.long), cuts], 1).gather(1, doc_ids.clamp(min=0))
    positions = (torch.arange(T)[None] - starts).masked_fill(doc_ids < 0, 0)
    ids = torch.randint(0, 1000, (B, T))
    batch = {k: v.to(check.device) for k, v in {"input_ids": ids, "labels": ids.masked_fill(doc_ids < 0, -100),
                                                "doc_ids": doc_ids, "positions": positions}.items()}
    results = {}
    original = model_module.uses_block_mask, model_module.compiled_flex_attention
    if check.smoke:  # CPU 上 FlexAttention 没有反向：只比前向，用不编译的 flex_attention（与 tests/test_document_mask.py 相同）
        from torch.nn.attention.flex_attention import flex_attention
        model_module.compiled_flex_attention = lambda: flex_attention
        model.requires_grad_(False)
    try:
        for name, flag in (("dense", False), ("flex", True)):
            model_module.uses_block_mask = lambda device, dropout, flag=flag: flag
            model.zero_grad()
            loss, _ = lm_loss(model, batch)
            if not check.smoke:
                loss.backward()
            results[name] = (loss.detach(), [p.grad.clone() if p.grad is not None else torch.zeros(())
                                             for p in model.parameters()])
    finally:
        model_module.uses_block_mask, model_module.compiled_flex_attention = original
    (dl, dg), (fl, fg) = results["dense"], results["flex"]
    grad_diff = max(float((a - b).abs().max()) for a, b in zip(dg, fg))
    record = {"part": "document_mask", "loss_dense": float(dl), "loss_flex": float(fl),
              "loss_diff": abs(float(dl - fl)), "max_grad_diff": grad_diff, "ok": abs(float(dl - fl)) < 1e-4 and grad_diff < 1e-4}
    print(f"文档掩码 (document mask)：损失 稠密 {float(dl):.6f} / Flex {float(fl):.6f}，梯度最大差 {grad_diff:.2e} → "
          f"{'相同 (same)' if record['ok'] else '不同 (DIFFERENT)'}", flush=True)
    return record


# ===== 2. 逐词解码：普通 vs CUDA graph =====
def timed_generation(check: Check, model, tokenizer, prompt, cfg: SamplingConfig, seed: int) -> tuple[list[int], float]:
    """生成 check.reply 个词元；返回 (词元, 首个词元之后的每秒词元数)。"""
    check.sync()
    stamps, tokens = [], []
    for step in generate_tokens(model, prompt, check.reply, cfg, tokenizer, seed=seed):
        stamps.append(time.perf_counter())
        tokens.append(step.token_id)
    return tokens, (len(stamps) - 1) / (stamps[-1] - stamps[0])


def check_decoding(check: Check) -> list[dict]:
    """study 结构的随机模型（fp32，词表 10000），批大小 1：普通路径与 CUDA graph 的速度与输出。"""
    tokenizer = never_ending(vocab_10k())
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=tokenizer.vocab_size, **check.decode_model)).to(check.device).eval()
    prompt = torch.randint(10, tokenizer.vocab_size, (20,), generator=torch.Generator().manual_seed(1)).tolist()
    settings = {"sampled": SamplingConfig(temperature=0.7, top_k=50, repetition_penalty=1.2),
                "greedy": SamplingConfig(temperature=0)}
    plain = {}
    for name, cfg in settings.items():
        timed_generation(check, model, tokenizer, prompt, cfg, 0)  # 预热
        plain[name] = [timed_generation(check, model, tokenizer, prompt, cfg, seed) for seed in (1, 2)]
    start = time.perf_counter()
    compile_decoding(model, settings["sampled"])  # 先按抽样的设置编译；贪心的"形状"在第一次用到时再编译
    compile_s = {"sampled": time.perf_counter() - start}
    records = []
    for name, cfg in settings.items():
        start = time.perf_counter()
        timed_generation(check, model, tokenizer, prompt, cfg, 0)  # 预热：CUDA graph 在头几次调用时录制
        compile_s[name] = compile_s.get(name, 0.0) + time.perf_counter() - start  # 编译 + 录制 + 第一次生成
        graph = [timed_generation(check, model, tokenizer, prompt, cfg, seed) for seed in (1, 2)]
        same = [p[0] == g[0] for p, g in zip(plain[name], graph)]
        first_diff = [next((i for i, (a, b) in enumerate(zip(p[0], g[0])) if a != b), None)
                      for p, g in zip(plain[name], graph)]
        plain_tps, graph_tps = max(t for _, t in plain[name]), max(t for _, t in graph)
        records.append({"part": "decode", "sampling": name, "plain_tokens_per_s": round(plain_tps, 1),
                        "graph_tokens_per_s": round(graph_tps, 1), "speedup": round(graph_tps / plain_tps, 2),
                        "compile_s": round(compile_s[name], 1), "same_tokens_per_seed": same, "first_difference": first_diff})
        print(f"解码 (decode) {name}：普通 {plain_tps:.0f} tokens/s，CUDA graph {graph_tps:.0f} tokens/s "
              f"→ {graph_tps / plain_tps:.2f}×（编译与第一次生成 {compile_s[name]:.0f} s）；同种子词元相同：{same}，第一处不同：{first_diff}",
              flush=True)
    return records


# ===== 3. 训练吞吐：交给 train_throughput.py =====
def run_train_throughput(check: Check, data: str, extra: list[str]) -> int:
    size = (["--device", "cpu", "--preset", "tiny", "--batch-size", "2", "--steps", "1", "--warmup", "1", "--no-compile"]
            if check.smoke else ["--device", "cuda", "--batch-size", "256", "--steps", "10", "--warmup", "3"])
    cmd = [sys.executable, str(HERE / "train_throughput.py"), *size, "--no-profile", "--data", data, *extra]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


# ===== 4. README 的 GPU 训练命令，在共享的真实语料上（第 13 号问题） =====
def recipe_corpora(data_dir: Path) -> tuple[list[str], str, str]:
    """(训练语料, 验证语料, 领域外评估语料)：与 docs/training.md §7 的 CPU 30 分钟实测同一份。"""
    train = [data_dir / "lccc_20k.conv", data_dir / "cdial_train_10k.conv", *sorted((data_dir / "subtitles").glob("*.conv"))]
    missing = [str(f) for f in [*train, data_dir / "cdial_valid_2k.conv", data_dir / "kdconv_dev_450.conv"] if not f.is_file()]
    if missing:
        sys.exit(f"{missing[0]} 不存在：--data-dir 要指向共享语料的布局（*.conv 与 subtitles/）。")
    return [str(f) for f in train], str(data_dir / "cdial_valid_2k.conv"), str(data_dir / "kdconv_dev_450.conv")


def head_of_corpora(data_dir: Path, out: Path, dialogues: int) -> Path:
    """把共享语料每个文件的前 dialogues 段对话写到 out（同样的布局），给 --smoke 用。"""
    for src in [*data_dir.glob("*.conv"), *data_dir.glob("subtitles/*.conv")]:
        blocks = src.read_text(encoding="utf-8").split("\nE\n")[:dialogues]
        dst = out / src.relative_to(data_dir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("\nE\n".join(blocks) + "\n", encoding="utf-8")
    return out


def summarize_metrics(path: Path) -> dict:
    """从 metrics.jsonl 读出：训练吞吐（中位数，去掉前 10% 的步：编译与预热）、每个 epoch 的时间、验证损失的最低点。"""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    steps = [r for r in rows if "loss" in r and "tokens_per_s" in r]
    vals = [r for r in rows if "val_loss" in r]
    ends = [r for r in rows if r.get("epoch_end")]
    steady = steps[len(steps) // 10:] or steps
    # 每个 epoch 的时间：相邻两个 epoch 末之间的训练步的 elapsed_s 之差（第一个 epoch 含编译，单独列出）
    end_times = []
    for end in ends:
        before = [r["elapsed_s"] for r in steps if r["step"] <= end["step"]]
        if before:
            end_times.append(before[-1])
    epoch_s = [b - a for a, b in zip(end_times, end_times[1:])]
    best = min(vals, key=lambda r: r["val_loss"]) if vals else None
    per_epoch = ends[0]["step"] if ends else None  # 每个 epoch 的优化步数：第一个 epoch 末的步数
    return {"steps": max((r["step"] for r in rows), default=0), "epochs_done": len(ends), "steps_per_epoch": per_epoch,
            "tokens_per_s_median": round(statistics.median(r["tokens_per_s"] for r in steady), 1) if steady else None,
            "first_epoch_s": round(end_times[0], 1) if end_times else None,
            "epoch_s_median": round(statistics.median(epoch_s), 1) if epoch_s else None,
            "validations": len(vals),
            "best_val_step": best["step"] if best else None,
            "best_val_epochs": round(best["step"] / per_epoch, 2) if best and per_epoch else None,  # 第几个 epoch（可以是小数）
            "best_val_loss": round(best["val_loss"], 4) if best else None,
            "best_val_bpc": round(best["val_bpc"], 3) if best else None,
            "last_val_loss": round(vals[-1]["val_loss"], 4) if vals else None}


def studygpt_command(args: list[str], timeout: float | None = None) -> int:
    """python -m studygpt ...，用的是这个检出里的代码（不管当前目录在哪、别处装没装 studygpt）。
    超过 timeout 秒就停掉它，返回 124（和 timeout 命令一样）。"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "studygpt", *args]
    print("$", " ".join(cmd), flush=True)
    try:
        return subprocess.run(cmd, env=env, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"超过 {timeout:.0f} 秒，停掉了 (stopped after {timeout:.0f} s)", flush=True)
        return 124


def run_recipe(check: Check, data_dir: Path, minutes: float) -> dict:
    """训练 → 两份留出语料上评估 → 温度 0.7 的回答；返回一条汇总记录并打印可以贴进文档的表。"""
    if check.smoke:  # 冒烟测试：每份语料只取开头几十段，几秒内走完几个 epoch
        data_dir = head_of_corpora(data_dir, Path("runs/gpu_check_smoke_data"), 40)
    train, val, other = recipe_corpora(data_dir)
    out = Path("runs/gpu_check_recipe")
    shutil.rmtree(out, ignore_errors=True)
    size = ["--preset", "tiny", "--batch-size", "8", "--epochs", "3"] if check.smoke else \
        ["--preset", "study", "--batch-size", "128", "--epochs", "10"]
    # 不加 --max-minutes：有时间预算时学习率调度按"时间进度"走（见 training/optim.py），GPU 上第一步的编译会把它推到一半，
    # 那就不是 README 的那条命令了。时间上限改由外面掐：超时停掉，已经写下的 metrics.jsonl 与 best/ 照样能用。
    args = ["train", "--data", *train, "--val", val, "--out", str(out), *size]
    start = time.perf_counter()
    code = studygpt_command(args, timeout=minutes * 60)
    shown = " ".join(["studygpt", *args]).replace(" ".join(train[2:]), str(Path(train[2]).parent / "*.conv"))
    record = {"part": "recipe", "command": shown, "exit_code": code, "timed_out": code == 124,
              "wall_s": round(time.perf_counter() - start, 1)}
    copy_to_out(out / "metrics.jsonl", "recipe_metrics.jsonl")
    if code not in (0, 124) or not (out / "metrics.jsonl").is_file():
        print(f"训练命令失败（退出码 {code}），没有汇总 (training command failed, no summary)", flush=True)
        return record
    record.update(summarize_metrics(out / "metrics.jsonl"))
    save(check, [{**record, "part": "recipe_training"}])  # 先存一份：后面评估时超时也不丢
    for name, path in (("cdial_valid_2k", val), ("kdconv_dev_450", other)):
        result = out / f"eval_{name}.json"
        if studygpt_command(["eval", str(out), "--data", path, "--out", str(result), "--seeds", "0"]) == 0:
            data = json.loads(result.read_text(encoding="utf-8"))
            record[f"bpc_{name}"] = round(data["bpc"], 3)
    model, tokenizer, meta = load_model(out, check.device, announce=True)
    record["checkpoint"] = str(meta["checkpoint"])
    record["samples"] = {prompt: [generate_response(model, tokenizer, prompt, temperature=0.7, seed=seed)
                                  for seed in (1, 2, 3)] for prompt in PROMPTS}
    print_recipe(record)
    return record


def print_recipe(r: dict) -> None:
    print("\n| 项 | 实测 |\n|---|---|")
    print(f"| 命令 | `{r['command']}` |")
    print(f"| 步数 / 走完的 epoch | {r['steps']} / {r['epochs_done']}（墙钟 {r['wall_s']} s，含编译与验证） |")
    print(f"| 训练吞吐（中位数） | {r['tokens_per_s_median']} tokens/s |")
    print(f"| 每个 epoch | 第一个 {r['first_epoch_s']} s（含编译），之后中位数 {r['epoch_s_median']} s |")
    print(f"| 验证损失最低点 | 第 {r['best_val_step']} 步 = {r['best_val_epochs']} 个 epoch（每 epoch {r['steps_per_epoch']} 步）：{r['best_val_loss']}"
          f"（bpc {r['best_val_bpc']}）；最后一次 {r['last_val_loss']}；共验证 {r['validations']} 次 |")
    print(f"| 留出 bpc（{r['checkpoint']}） | cdial_valid_2k {r.get('bpc_cdial_valid_2k')} · kdconv_dev_450 {r.get('bpc_kdconv_dev_450')} |")
    if r["tokens_per_s_median"]:
        minutes = XIAOHUANGJI_TOKENS / r["tokens_per_s_median"] / 60
        print(f"| 按实测速度推算小黄鸡（约 {XIAOHUANGJI_TOKENS:,} 个词元） | 一个 epoch 约 {minutes:.1f} 分钟，"
              f"10 个 epoch 约 {10 * minutes:.0f} 分钟（不含验证与编译；推算，不是实测） |")
    print("\n| 提示 | 种子 1 | 种子 2 | 种子 3 |\n|---|---|---|---|")
    for prompt, replies in r["samples"].items():
        print(f"| {prompt} | " + " | ".join(x.replace("|", "｜") or "（空）" for x in replies) + " |")
    print(flush=True)


def main() -> None:
    args = parse_args()
    check = Check(args.smoke)
    os.environ["PYTHONUNBUFFERED"] = "1"  # 子进程的输出马上出来：被超时停掉时，已经打印的表也在日志里
    if args.smoke:
        os.environ["BENCH_DRY_RUN"] = "1"  # 这个进程和它启动的基准脚本都不追加结果
    if not args.smoke and not torch.cuda.is_available():
        print("没有可用的 CUDA GPU (no CUDA GPU)：GPU 的数字要在有 GPU 的机器上量；CPU 的基准见 docs/performance.md。"
              "（--smoke 在 CPU 上检查脚本本身）")
        sys.exit(2)
    check.machine = print_machine("GPU 检查 (GPU check)" + ("：--smoke，CPU 上的冒烟测试，数字无意义" if args.smoke else ""))
    if not args.only_recipe:
        part(check, "document_mask", lambda: check_document_mask(check))
        part(check, "decode", lambda: check_decoding(check))
        if not args.skip_train:  # 每次运行完马上存：稠密掩码那次最可能超时，不该连累 Flex 那次的结果
            part(check, "train_throughput", lambda: {
                "part": "train_throughput", "mask": "flex", "exit_code": run_train_throughput(check, args.data, [])})
            if not args.skip_dense:
                part(check, "train_throughput", lambda: {
                    "part": "train_throughput", "mask": "dense",
                    "exit_code": run_train_throughput(check, args.data, ["--dense-mask", "--no-reference"])})
    if args.recipe or args.only_recipe:
        part(check, "recipe", lambda: run_recipe(check, Path(args.data_dir), args.recipe_minutes))


if __name__ == "__main__":
    main()
