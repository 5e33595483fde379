"""break-it 实验的表 (the lab table, issue #30)：每个实验 × 每个种子，对照组与实验组量出来的数，
以及课程期望的那个选项 (expected) 在几个种子上成立。docs/zh/labs.md 的表就是它打印的。

每个格子 (cell) = (实验名或 baseline, 种子, 步数)。对照组每个种子只训练一次，所有实验共用：同一个种子、
同样的步数、同样的数据，与 `studygpt lab NAME` 里的对照组是同一个计算（labs/arms.py 的 train_arm）。

可以续跑 (resumable)：每个做完的格子追加一行到 --cells（默认 runs/labs_table/cells.jsonl，runs/ 不进 git）；
再跑时跳过已有的格子（按 格子、种子、步数 对应）。

    python benchmarks/labs_table.py --threads 1              # 全部实验 × 种子 0 1 2，每组 600 步（可中断，再跑接着做）
    python benchmarks/labs_table.py --labs no-mask --seeds 0   # 只跑一部分
    python benchmarks/labs_table.py --report                   # 只打印表，不训练
    python benchmarks/labs_table.py --record                   # 维护者：做完的格子连同机器信息追加到 benchmarks/results/labs_table.jsonl（进 git）
    python benchmarks/labs_table.py --report --record          # 只打印记录在仓库里的格子（docs/zh/labs.md 的表），不训练、不写

要多久：每个格子是一次 --max-steps 步的训练加两场考试，9 个实验 + 对照组 = 10 格一个种子；
这台机器上的实测用时写在 docs/zh/labs.md 里。
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import REPO, append_results, code_version, print_machine, results_path

from studygpt.labs.arms import Arm, train_arm
from studygpt.labs.catalog import LAB_STEPS, LABS
from studygpt.recipes.quickstart import quickstart_data
from studygpt.recipes.report import md_table

BASELINE = "baseline"


def read_cells(path: Path) -> dict[tuple[str, int, int], dict]:
    cells = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                cell = json.loads(line)
                cells[(cell["cell"], cell["seed"], cell["steps"])] = cell
    return cells


def run_cells(names: list[str], seeds: list[int], steps: int, path: Path, threads: int | None) -> None:
    """把还没做的格子一个个做完，每做完一个就追加一行（中断了也不丢已经做完的）。"""
    done = read_cells(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        todo = [n for n in [BASELINE, *names] if (n, seed, steps) not in done]
        if not todo:
            continue
        data = quickstart_data(seed)
        for name in todo:
            print(f"格子 (cell) {name} · 种子 {seed} · {steps} 步 …", flush=True)
            variant = None if name == BASELINE else LABS[name].variant
            arm = train_arm(variant, data, seed, steps, REPO / "runs" / "labs_table" / f"{name}-s{seed}-n{steps}",
                            threads=threads)
            numbers = {k: v for k, v in asdict(arm).items() if k != "history"}  # 曲线在运行目录的 metrics.jsonl 里
            cell = {"cell": name, "seed": seed, "steps": steps, "threads": torch.get_num_threads(),
                    "code": code_version(), "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "arm": numbers}
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(cell, ensure_ascii=False) + "\n")
            print(f"  训练损失 {arm.train_loss:.3f} · 验证损失 {arm.val_loss:.3f} · 聊天 {arm.chat_score} · "
                  f"加法 {arm.sums_score} · {arm.seconds:.0f} 秒", flush=True)


def arm_of(cell: dict) -> Arm:
    return Arm(**cell["arm"])


def mean_text(values: list[float], percent: bool = False) -> str:
    m = statistics.fmean(values)
    if percent:
        return f"{100 * m:.0f}%"
    return "发散" if m == float("inf") else f"{m:.2f}"


def report(cells: dict, names: list[str], seeds: list[int], steps: int) -> str:
    """Markdown 表：每个实验一行，数是几个种子的平均（对照 → 实验），最后一列是期望的选项成立了几次。"""
    rows, per_seed = [], []
    for name in names:
        pairs = [(arm_of(cells[(BASELINE, s, steps)]), arm_of(cells[(name, s, steps)])) for s in seeds
                 if (BASELINE, s, steps) in cells and (name, s, steps) in cells]
        if not pairs:
            continue
        lab = LABS[name]
        choice = dict(lab.lettered())[lab.expected]
        held = sum(bool(choice.holds(b, v)) for b, v in pairs)

        def both(field: str, percent: bool = False) -> str:
            return (f"{mean_text([getattr(b, field) for b, _ in pairs], percent)} → "
                    f"{mean_text([getattr(v, field) for _, v in pairs], percent)}")

        rows.append([f"`{name}`", lab.title, both("train_loss"), both("val_loss"), both("chat", True),
                     both("sums", True), f"{lab.expected}：{choice.rule}", f"{held}/{len(pairs)}"])
        per_seed += [[f"`{name}`", s, f"{v.train_loss:.3f}", f"{v.val_loss:.3f}", v.chat_score, v.sums_score,
                      "✓" if choice.holds(b, v) else "✗"] for s, (b, v) in zip(seeds, pairs)]
    baselines = [[s, f"{a.train_loss:.3f}", f"{a.val_loss:.3f}", a.chat_score, a.sums_score, f"{a.seconds:.0f}"]
                 for s in seeds if (BASELINE, s, steps) in cells for a in [arm_of(cells[(BASELINE, s, steps)])]]
    seconds = [c["arm"]["seconds"] for c in cells.values() if c["steps"] == steps]
    return "\n\n".join([
        f"每组 {steps} 步；种子 {', '.join(map(str, seeds))}；数是几个种子的平均，对照组 → 实验组。"
        f"一组（训练 + 考试）用时中位数 {statistics.median(seconds):.0f} 秒。",
        md_table(["实验", "拆掉了什么", "训练损失", "验证损失", "聊天 (20 题)", "留出加法", "期望的选项与规则", "成立"], rows),
        "对照组（每个种子一次，所有实验共用）：",
        md_table(["种子", "训练损失", "验证损失", "聊天", "留出加法", "用时 (s)"], baselines),
        "每个种子的实验组：",
        md_table(["实验", "种子", "训练损失", "验证损失", "聊天", "留出加法", "期望的选项成立"], per_seed),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labs", nargs="*", default=list(LABS), choices=list(LABS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=LAB_STEPS)
    parser.add_argument("--threads", type=int, default=None, help="CPU 线程数；默认 PyTorch 的默认（每个核一个）")
    parser.add_argument("--cells", type=Path, default=REPO / "runs" / "labs_table" / "cells.jsonl")
    parser.add_argument("--report", action="store_true", help="只打印表，不训练")
    parser.add_argument("--record", action="store_true", help="把这些格子连同机器信息追加到 benchmarks/results/labs_table.jsonl")
    args = parser.parse_args()
    machine = print_machine("break-it 实验的表 (lab table)")
    if args.report and args.record:  # 记录在仓库里的格子：只读
        cells = read_cells(results_path("labs_table.jsonl", True))
    else:
        if not args.report:
            run_cells(args.labs, args.seeds, args.max_steps, args.cells, args.threads)
        cells = read_cells(args.cells)
    chosen = [c for (name, seed, steps), c in cells.items()
              if name in [BASELINE, *args.labs] and seed in args.seeds and steps == args.max_steps]
    if not chosen:
        print(f"还没有量过的格子 (no cells yet)：{args.max_steps} 步、种子 {args.seeds}；先不加 --report 跑一遍。")
        return
    print(report(cells, args.labs, args.seeds, args.max_steps))
    if args.record and not args.report:
        append_results("labs_table", machine, chosen, record=True)

if __name__ == "__main__":
    main()
