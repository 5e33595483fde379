"""后训练演示 (post-training demo)：快速上手的模型 → 监督微调 (SFT) → 强化学习 (GRPO) 与偏好微调 (DPO)，打印前后的成绩。

    python benchmarks/rl_dpo_demo.py --start runs/quickstart            # 默认：sub2，SFT 200 步（45% 坏示范），RL 80 步，DPO 60 步
    python benchmarks/rl_dpo_demo.py --start runs/quickstart --skip-sft --sft-out runs/posttrain/sft   # 复用已有的 SFT
    python benchmarks/rl_dpo_demo.py --skip-sft --dpo-sweep   # 只做 DPO：第 14 章的表，β 与 --sft-weight 的 5 种组合
    python benchmarks/rl_dpo_demo.py --start runs/quickstart --record   # 维护者：表追加到 benchmarks/results/（进 git）

三次运行都是 `studygpt sft | rl | dpo`（studygpt/recipes/posttrain.py），各写进 OUT/sft、OUT/rl、OUT/dpo：
检查点 last/、metrics.jsonl、curves.png、summary.json。最后一张表列出每一步的留出题正确率、20 个固定聊天问题、
留出偏好准确率，以及墙钟时间 (wall) 与本进程的 CPU 时间——机器被别的程序占着时墙钟会长得多，CPU 时间更可比。
结果追加到 runs/benchmarks/rl_dpo_demo.jsonl（runs/ 不进 git）；加 --record 才追加到 benchmarks/results/rl_dpo_demo.jsonl。
这是脚本，不是测试。
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import append_results, print_machine

from studygpt.posttrain.rl import RLConfig
from studygpt.recipes.posttrain import run_dpo, run_rl, run_sft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="runs/quickstart", help="快速上手的训练目录或检查点")
    parser.add_argument("--out", default="runs/posttrain", help="输出目录")
    parser.add_argument("--task", default="sub2")
    parser.add_argument("--sft-steps", type=int, default=200)
    parser.add_argument("--sloppy", type=float, default=0.45, help="SFT 示范里停不下来的坏示范的比例")
    parser.add_argument("--rl-steps", type=int, default=80)
    parser.add_argument("--rl-lr", type=float, default=1e-4)
    parser.add_argument("--dpo-steps", type=int, default=60)
    parser.add_argument("--dpo-lr", type=float, default=1e-4)
    parser.add_argument("--skip-sft", action="store_true", help="不做 SFT，直接用 OUT/sft")
    parser.add_argument("--dpo-sweep", action="store_true",
                        help="DPO 换 5 种 (β, sft_weight)：纯 DPO、大 β、加 SFT 项、只有 SFT 项的对照（第 14 章的表）")
    parser.add_argument("--threads", type=int, default=1, help="torch 线程数（与别的程序抢 CPU 时 1 最快）")
    parser.add_argument("--record", action="store_true", help="结果追加到 benchmarks/results/rl_dpo_demo.jsonl（进 git）")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = print_machine("后训练演示 (post-training demo): SFT → RL / DPO")
    out = Path(args.out)
    sft = out / "sft"
    if not args.skip_sft:
        run_sft(args.start, sft, args.task, steps=args.sft_steps, sloppy=args.sloppy)
    if args.dpo_sweep:
        return dpo_sweep(sft / "last", out, args, machine)
    rl = run_rl(sft / "last", out / "rl", RLConfig(task=args.task), steps=args.rl_steps, lr=args.rl_lr)
    dpo = run_dpo(sft / "last", out / "dpo", "builtin", args.task, steps=args.dpo_steps, lr=args.dpo_lr)
    rows = [("RL 之前 (SFT)", f"{rl['before']['heldout']:.1%}", f"{rl['before']['chat']:.0%}", "", ""),
            ("RL 之后", f"{rl['after']['heldout']:.1%}", f"{rl['after']['chat']:.0%}", "",
             f"{rl['wall_s']:.0f} / {rl['cpu_s']:.0f}"),
            ("DPO 之前 (SFT)", f"{dpo['before']['scores']['heldout']:.1%}", f"{dpo['before']['scores']['chat']:.0%}",
             f"{dpo['before']['prefs']['pref_acc']:.1%}", ""),
            ("DPO 之后", f"{dpo['after']['scores']['heldout']:.1%}", f"{dpo['after']['scores']['chat']:.0%}",
             f"{dpo['after']['prefs']['pref_acc']:.1%}", f"{dpo['wall_s']:.0f} / {dpo['cpu_s']:.0f}")]
    header = ("", "留出题答对", "20 个聊天问题", "留出偏好准确率", "秒 wall / CPU")
    for row in [header] + rows:
        print(" | ".join(f"{cell:<14}" for cell in row))
    append_results("rl_dpo_demo", machine, [{"task": args.task, "rl": rl, "dpo": dpo}], record=args.record)


SWEEP = [(0.1, 0.0), (0.5, 0.0), (0.1, 0.5), (0.1, 1.0), (0.001, 1.0)]  # (β, sft_weight)；最后一行：DPO 项几乎为 0 的对照


def dpo_sweep(start: Path, out: Path, args, machine: dict) -> None:
    """同一个 SFT 起点、同样的步数与偏好对，只改 β 与 sft_weight：似然位移与 SFT 项（第 14 章）。"""
    rows = []
    for beta, weight in SWEEP:
        s = run_dpo(start, out / f"dpo_b{beta:g}_w{weight:g}", "builtin", args.task, beta=beta, steps=args.dpo_steps,
                    lr=args.dpo_lr, sft_weight=weight)
        after = s["after"]
        rows.append({"beta": beta, "sft_weight": weight, "pref_acc": after["prefs"]["pref_acc"],
                     "chosen_shift": after["prefs"]["chosen_shift"], "rejected_shift": after["prefs"]["rejected_shift"],
                     "heldout_before": s["before"]["scores"]["heldout"], "heldout": after["scores"]["heldout"],
                     "wall_s": s["wall_s"], "cpu_s": s["cpu_s"]})
    print("| β | sft_weight | 留出偏好准确率 | chosen 的 log π 变化 | rejected 的 log π 变化 | 留出题完全正确 | CPU 秒 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['beta']:g} | {r['sft_weight']:g} | {r['pref_acc']:.1%} | {r['chosen_shift']:+.2f} | "
              f"{r['rejected_shift']:+.2f} | {r['heldout_before']:.1%} → {r['heldout']:.1%} | {r['cpu_s']:.0f} |")
    append_results("rl_dpo_demo", machine, [{"task": args.task, "dpo_sweep": rows}], record=args.record)


if __name__ == "__main__":
    main()
