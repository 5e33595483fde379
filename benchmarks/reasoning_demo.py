"""思考与工具的演示 (reasoning and tools demo, issue #29)：同一个快速上手的模型，三位数加法 add3 的留出题，几种做法。

    python benchmarks/reasoning_demo.py                     # 全部：约 30 分钟（2 核 CPU）
    python benchmarks/reasoning_demo.py --report            # 不训练：读已完成的阶段，打印表格、画图
    python benchmarks/reasoning_demo.py --quick --out /tmp/r   # 冒烟：每个阶段几步（测试用）

阶段（每个都是一次 `studygpt sft|rl`，输出在 OUT/阶段名/；已有 summary.json 的阶段跳过，所以打断后再跑会接着做）：
    direct       直接答的示范做 SFT（基线：进位链一步算不完，几乎全错）            3 分钟
    think        先在 <think> 里逐位打草稿再答（posttrain/scratchpad.py）          3 分钟
    rl           从 think 出发做 GRPO，奖励只看最后的答案对不对                     3 分钟
    tool         调用计算器（<tool_call>，程序执行，结果放回对话）                  3 分钟
    think_short  草稿 SFT 只走 200 步（学习率 5e-4）：一个"会一半"的起点
    rl_short     从 think_short 出发，奖励只看最后的答案                           5 分钟
    hack         从 think_short 出发，奖励只看格式：奖励涨了，答对的比例呢？       5 分钟
    direct_default, think_default   `studygpt sft` 的默认设置（200 步、6000 道题、学习率 1e-3），两种示范各一次
每个阶段之后都考：留出的 200 道 add3（贪心解码）、快速上手的 20 个固定聊天问题、快速上手留出的两位数加法。
--record 时把表格追加到 benchmarks/results/reasoning_demo.jsonl（默认不动仓库里的文件）。
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _common import append_results, print_machine

from studygpt.posttrain.rl import RLConfig
from studygpt.recipes.posttrain import run_rl, run_sft

STAGES = {  # 名字: 说明、起点（别的阶段或 start）、做法、分钟（None = 按步数）、步数、学习率
    "direct": dict(label="直接答 SFT (direct, baseline)", start="start", form="direct", minutes=3.0),
    "think": dict(label="草稿 SFT (scratchpad)", start="start", form="think", minutes=3.0),
    "rl": dict(label="草稿 SFT + RL (exact reward)", start="think", reward="exact", minutes=3.0),
    "tool": dict(label="计算器 (calculator tool) SFT", start="start", form="tool", minutes=3.0),
    "think_short": dict(label="草稿 SFT 200 步 (half-trained)", start="start", form="think", steps=200, lr=5e-4),
    "rl_short": dict(label="200 步草稿 SFT + RL (exact reward)", start="think_short", reward="exact", minutes=5.0),
    "hack": dict(label="200 步草稿 SFT + RL (format reward)", start="think_short", reward="format", minutes=5.0),
    # `studygpt sft` 的默认设置（200 步、6000 道题、学习率 1e-3）：第 14、15 章和 issue #29 量"直接答 0–1.5%"的那个条件
    "direct_default": dict(label="直接答 SFT，sft 默认设置", start="start", form="direct", steps=200, lr=1e-3,
                           problems=6000),
    "think_default": dict(label="草稿 SFT，sft 默认设置", start="start", form="think", steps=200, lr=1e-3,
                          problems=6000),
}


def run_stage(name: str, args, out: Path, start: Path) -> dict:
    spec = STAGES[name]
    origin = start if spec["start"] == "start" else out / spec["start"] / "last"
    minutes = None if args.quick or "minutes" not in spec else spec["minutes"] * args.scale
    steps = 2 if args.quick else spec.get("steps", 100_000)  # 有时间预算时由时间决定何时停
    if "form" in spec:
        return run_sft(origin, out / name, "add3", problems=spec.get("problems", args.problems), steps=steps, lr=spec.get("lr", args.lr),
                       seed=args.seed, form=spec["form"], max_minutes=minutes,
                       eval_every=1 if args.quick else args.eval_every)
    config = RLConfig(task="add3", reward=spec["reward"], max_new_tokens=0, seed=args.seed)
    return run_rl(origin, out / name, config, steps=steps, lr=args.rl_lr,
                  eval_every=1 if args.quick else args.rl_eval_every, max_minutes=minutes)


def ensure_start(args) -> Path:
    start = Path(args.start)
    if start.exists():
        return start
    from studygpt.recipes.quickstart import run_quickstart
    print(f"{start} 不存在：先跑一次快速上手 (quick start)")
    run_quickstart(out=str(start), chat=False, progress=False, max_steps=20 if args.quick else None,
                   exam_conversations=5 if args.quick else 100)
    return start


def summaries(out: Path) -> dict:
    found = {}
    for name in STAGES:
        path = out / name / "summary.json"
        if path.is_file():
            found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found


def rewards(out: Path, name: str) -> str:
    """RL 阶段的平均奖励：前 10 步 → 最后 10 步（抽样温度 1）。SFT 阶段没有奖励，写 —。"""
    path = out / name / "metrics.jsonl"
    values = [e["reward"] for e in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if "reward" in e] \
        if path.is_file() else []
    if not values:
        return "—"
    first, last = values[:10], values[-10:]
    return f"{sum(first) / len(first):.2f} → {sum(last) / len(last):.2f}"


def table(out: Path, found: dict) -> list[str]:
    lines = ["| 做法 (stage) | 留出题答对 (held-out exact) | 训练分钟 (wall) | 步数 | RL 奖励 (前 → 后 10 步) "
             "| 20 个聊天问题 | 两位数加法 |", "|---|---|---|---|---|---|---|"]
    if "direct" in found or "think" in found:
        before = (found.get("direct") or found["think"])["before"]
        lines.append(f"| 快速上手的模型 (start) | {before['heldout']:.1%} | — | — | — | {before['chat']:.0%} | "
                     f"{before['two_digit']:.0%} |")
    for name, s in found.items():
        after = s["after"]
        lines.append(f"| {STAGES[name]['label']} | {after['heldout']:.1%} | {s.get('train_s', s['wall_s']) / 60:.1f} | "
                     f"{s['steps']} | {rewards(out, name)} | {after['chat']:.0%} | {after['two_digit']:.0%} |")
    return lines


def curves(out: Path, found: dict, figure: Path) -> None:
    """留出题答对的比例对训练分钟：rl/hack 接在 think 的结尾之后。"""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from studygpt.plotting import setup_cjk_font
    setup_cjk_font()
    fig, ax = plt.subplots(figsize=(10, 4))
    def minutes(stage: str) -> float:  # 一个阶段的训练分钟，加上它的起点之前用掉的
        spec, s = STAGES[stage], found.get(stage, {})
        before = minutes(spec["start"]) if spec["start"] in found else 0.0
        return before + s.get("train_s", s.get("wall_s", 0.0)) / 60

    offset = {name: minutes(STAGES[name]["start"]) if STAGES[name]["start"] in found else 0.0 for name in found}
    for name in found:
        points = []
        for line in (out / name / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if "heldout_acc" in entry:
                points.append((offset.get(name, 0.0) + entry.get("wall_s", 0.0) / 60, 100 * entry["heldout_acc"]))
        if points:
            ax.plot(*zip(*points), marker="o", ms=3, label=STAGES[name]["label"])
    ax.set_xlabel("CPU 上的训练时间 (minutes, 2 cores)")
    ax.set_ylabel("add3 留出题答对 % (held-out exact)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    print(f"图 (figure): {figure}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="runs/quickstart", help="快速上手的训练目录；不存在时先训练一个")
    parser.add_argument("--out", default="runs/reasoning", help="输出目录（每个阶段一个子目录）")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    parser.add_argument("--problems", type=int, default=20000, help="SFT 的训练题数")
    parser.add_argument("--lr", type=float, default=2e-3, help="SFT 的学习率")
    parser.add_argument("--rl-lr", type=float, default=1e-4)
    parser.add_argument("--eval-every", type=int, default=150, help="SFT 每几步考一次留出题（画曲线）")
    parser.add_argument("--rl-eval-every", type=int, default=10)
    parser.add_argument("--scale", type=float, default=1.0, help="所有时间预算乘这个数")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="冒烟：每个阶段只走几步")
    parser.add_argument("--report", action="store_true", help="不训练：读已完成的阶段，打印表格、画图")
    parser.add_argument("--figure", default=None, help="图的路径（默认 OUT/reasoning.png）")
    parser.add_argument("--record", action="store_true", help="把结果追加到 benchmarks/results/reasoning_demo.jsonl")
    args = parser.parse_args(argv)
    out = Path(args.out)
    machine = print_machine("思考与工具 (reasoning and tools): add3")
    if not args.report:
        torch.manual_seed(args.seed)
        start = ensure_start(args)
        for name in args.stages:
            if (out / name / "summary.json").is_file():
                print(f"阶段 {name}: 已完成，跳过（删掉 {out / name} 可重跑）")
                continue
            print(f"\n===== 阶段 (stage) {name}: {STAGES[name]['label']} =====")
            run_stage(name, args, out, start)
    found = summaries(out)
    print("\n".join(table(out, found)))
    if found:
        curves(out, found, Path(args.figure) if args.figure else out / "reasoning.png")
    if args.record and found:
        append_results("reasoning_demo", machine, [{"stages": found, "quick": args.quick, "seed": args.seed}], record=True)


if __name__ == "__main__":
    main()
