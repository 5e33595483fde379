"""GPU 检查 (GPU check)：一次量完第 19 号问题要的 GPU 数字，一块 GPU 上 8 分钟以内。

    python benchmarks/gpu_check.py [--data 语料.conv] [--skip-train] [--skip-dense] [--recipe]

1. 文档掩码 (document mask)：CUDA 上 FlexAttention 路径与稠密掩码路径的 logits、损失与梯度相同；
2. 逐词解码 (decoding)：批大小 1、抽样，普通路径 vs CUDA graph（fast_decode，torch.compile reduce-overhead），
   报告编译时间、每秒词元数与倍数，并检查同一个种子两条路径生成的词元是否相同（抽样与贪心）；
3. 训练吞吐 (training)：benchmarks/train_throughput.py --device cuda --batch-size 256（bf16 + compile，
   真实训练器：打包 + 文档掩码走 FlexAttention），同一进程里计时 nanoGPT 写法的参照，打印倍数与 MFU；
   再用稠密掩码跑一次训练器作对照（--skip-dense 跳过）；
4. --recipe：README 的 GPU 训练命令（study 预设）跑 2 分钟，看日志里的 tokens/s。

每一部分做完就把结果追加到 benchmarks/results/gpu_check.jsonl（训练吞吐也追加到 train_throughput.jsonl），
设置了环境变量 OUT 时再复制一份到 $OUT（设备机器上的结果要从那里带回来）。中途超时的话，已完成的部分仍然留着。

共享语料不在仓库里：在有 GPU 的会话里先把它放进一个被 git 忽略的目录，再随命令带过去，例如
    mkdir -p runs/gpu_data && cp ../shared/data/lccc_20k.conv runs/gpu_data/
    （device 工具）run(command="python benchmarks/gpu_check.py --data runs/gpu_data/lccc_20k.conv",
                      carry=["runs/gpu_data"], timeout_s=540)
没有 GPU 时只打印一句话并退出（退出码 2）。这是脚本，不是测试。
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from _common import SHARED_DATA, append_results, print_machine
from generate_speed import never_ending, vocab_10k
from studygpt import model as model_module
from studygpt.fast_decode import compile_decoding
from studygpt.generate import SamplingConfig, generate_tokens
from studygpt.model import DialogueModel, ModelConfig, lm_loss
from studygpt.presets import get_preset

HERE = Path(__file__).parent
REPLY = 200  # 每次生成多少个词元


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(SHARED_DATA / "lccc_20k.conv"), help="训练吞吐用的语料")
    p.add_argument("--skip-train", action="store_true", help="不测训练吞吐")
    p.add_argument("--skip-dense", action="store_true", help="不测稠密掩码的训练器对照")
    p.add_argument("--recipe", action="store_true", help="也跑 README 的 GPU 训练命令 2 分钟")
    return p.parse_args()


def save(machine: dict, records: list[dict]) -> None:
    """追加到 benchmarks/results/gpu_check.jsonl，并把结果文件复制到 $OUT（有的话）。"""
    append_results("gpu_check", machine, records)
    out = os.environ.get("OUT")
    if out:
        for name in ("gpu_check.jsonl", "train_throughput.jsonl"):
            if (HERE / "results" / name).exists():
                shutil.copy(HERE / "results" / name, Path(out) / name)


# ===== 1. 文档掩码：FlexAttention = 稠密掩码 =====
def check_document_mask() -> dict:
    """study 形状的小批次（每行打包几段对话 + 填充）：两条路径的 logits、损失、梯度的最大差。"""
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=1000, n_layers=2)).cuda()
    B, T = 4, 256
    cuts = torch.randint(1, T, (B, 5)).sort(-1).values
    doc_ids = (torch.arange(T)[None, :, None] >= cuts[:, None, :]).sum(-1)  # (B, T)：每行 6 段
    doc_ids[:, -17:] = -1                                                     # 末尾填充
    starts = torch.cat([torch.zeros(B, 1, dtype=torch.long), cuts], 1).gather(1, doc_ids.clamp(min=0))
    positions = (torch.arange(T)[None] - starts).masked_fill(doc_ids < 0, 0)
    ids = torch.randint(0, 1000, (B, T))
    batch = {k: v.cuda() for k, v in {"input_ids": ids, "labels": ids.masked_fill(doc_ids < 0, -100),
                                      "doc_ids": doc_ids, "positions": positions}.items()}
    results = {}
    original = model_module.uses_block_mask
    for name, flag in (("dense", False), ("flex", True)):
        model_module.uses_block_mask = lambda device, dropout: flag
        model.zero_grad()
        loss, _ = lm_loss(model, batch)
        loss.backward()
        results[name] = (loss.detach(), [p.grad.clone() for p in model.parameters()])
    model_module.uses_block_mask = original
    (dl, dg), (fl, fg) = results["dense"], results["flex"]
    grad_diff = max(float((a - b).abs().max()) for a, b in zip(dg, fg))
    record = {"part": "document_mask", "loss_dense": float(dl), "loss_flex": float(fl),
              "loss_diff": abs(float(dl - fl)), "max_grad_diff": grad_diff, "ok": abs(float(dl - fl)) < 1e-4 and grad_diff < 1e-4}
    print(f"文档掩码 (document mask)：损失 稠密 {float(dl):.6f} / Flex {float(fl):.6f}，梯度最大差 {grad_diff:.2e} → "
          f"{'相同 (same)' if record['ok'] else '不同 (DIFFERENT)'}")
    return record


# ===== 2. 逐词解码：普通 vs CUDA graph =====
def timed_generation(model, tokenizer, prompt, cfg: SamplingConfig, seed: int) -> tuple[list[int], float]:
    """生成 REPLY 个词元；返回 (词元, 首个词元之后的每秒词元数)。"""
    torch.cuda.synchronize()
    stamps, tokens = [], []
    for step in generate_tokens(model, prompt, REPLY, cfg, tokenizer, seed=seed):
        stamps.append(time.perf_counter())
        tokens.append(step.token_id)
    return tokens, (len(stamps) - 1) / (stamps[-1] - stamps[0])


def check_decoding() -> list[dict]:
    """study 结构的随机模型（fp32，词表 10000），批大小 1：普通路径与 CUDA graph 的速度与输出。"""
    tokenizer = never_ending(vocab_10k())
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=tokenizer.vocab_size, **get_preset("study")["model"])).cuda().eval()
    prompt = torch.randint(10, tokenizer.vocab_size, (20,), generator=torch.Generator().manual_seed(1)).tolist()
    settings = {"sampled": SamplingConfig(temperature=0.7, top_k=50, repetition_penalty=1.2),
                "greedy": SamplingConfig(temperature=0)}
    plain = {}
    for name, cfg in settings.items():
        timed_generation(model, tokenizer, prompt, cfg, 0)  # 预热
        plain[name] = [timed_generation(model, tokenizer, prompt, cfg, seed) for seed in (1, 2)]
    start = time.perf_counter()
    compile_decoding(model, settings["sampled"])
    compile_s = time.perf_counter() - start
    records = []
    for name, cfg in settings.items():
        timed_generation(model, tokenizer, prompt, cfg, 0)  # 预热：CUDA graph 在头几次调用时录制
        graph = [timed_generation(model, tokenizer, prompt, cfg, seed) for seed in (1, 2)]
        same = [p[0] == g[0] for p, g in zip(plain[name], graph)]
        first_diff = [next((i for i, (a, b) in enumerate(zip(p[0], g[0])) if a != b), None)
                      for p, g in zip(plain[name], graph)]
        plain_tps, graph_tps = max(t for _, t in plain[name]), max(t for _, t in graph)
        records.append({"part": "decode", "sampling": name, "plain_tokens_per_s": round(plain_tps, 1),
                        "graph_tokens_per_s": round(graph_tps, 1), "speedup": round(graph_tps / plain_tps, 2),
                        "compile_s": round(compile_s, 1), "same_tokens_per_seed": same, "first_difference": first_diff})
        print(f"解码 (decode) {name}：普通 {plain_tps:.0f} tokens/s，CUDA graph {graph_tps:.0f} tokens/s "
              f"→ {graph_tps / plain_tps:.2f}×（编译 {compile_s:.0f} s）；同种子词元相同：{same}，第一处不同：{first_diff}")
    return records


# ===== 3. 训练吞吐：交给 train_throughput.py =====
def run_train_throughput(data: str, extra: list[str]) -> int:
    cmd = [sys.executable, str(HERE / "train_throughput.py"), "--device", "cuda", "--batch-size", "256",
           "--steps", "10", "--warmup", "3", "--no-profile", "--data", data, *extra]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


def run_recipe(data: str) -> int:
    """README 的 GPU 训练命令，跑 2 分钟；tokens/s 在它自己的日志里。"""
    cmd = [sys.executable, "-m", "studygpt", "train", "--data", data, "--out", "runs/gpu_check_recipe",
           "--preset", "study", "--max_minutes", "2"]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


def main() -> None:
    args = parse_args()
    if not torch.cuda.is_available():
        print("没有可用的 CUDA GPU (no CUDA GPU)：GPU 的数字要在有 GPU 的机器上量；CPU 的基准见 docs/performance.md。")
        sys.exit(2)
    machine = print_machine("GPU 检查 (GPU check)")
    save(machine, [check_document_mask()])
    save(machine, check_decoding())
    if not args.skip_train:
        codes = {"flex": run_train_throughput(args.data, [])}
        if not args.skip_dense:
            codes["dense"] = run_train_throughput(args.data, ["--dense-mask", "--no-reference"])
        save(machine, [{"part": "train_throughput", "exit_codes": codes}])
    if args.recipe:
        save(machine, [{"part": "recipe", "exit_code": run_recipe(args.data)}])


if __name__ == "__main__":
    main()
