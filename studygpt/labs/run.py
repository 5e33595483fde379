"""跑一个 break-it 实验 (run a lab)：先预测，再量，再对答案。

    ===== 1. 问题与预测 =====   问题和几个选项；学习者选一个（终端里问，或 --predict B）
    ===== 2. 训练两组 =====     对照组 (baseline) 原样、实验组 (variant) 只改一处：同一个种子、同样的步数、同样的数据
    ===== 3. 量出来的数 =====   训练损失、验证损失、快速上手的两场考试、几个回答；两组的损失曲线画在一张图上
    ===== 4. 判分 =====         每个选项按它的规则拿量出来的数判"成立 / 不成立"，说出你的预测是否成立
    ===== 5. 为什么 =====       三行解释，和讲这个部件的那一章
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from studygpt.errors import StudyGPTError
from studygpt.hardware import use_fewer_threads_if_faster
from studygpt.labs.arms import SAMPLE_PROMPTS, Arm, train_arm
from studygpt.labs.catalog import LAB_STEPS, LABS, Lab
from studygpt.plotting import plot_runs
from studygpt.recipes.quickstart import quickstart_data


def get_lab(name: str) -> Lab:
    if name not in LABS:
        raise StudyGPTError(f"没有叫 {name!r} 的实验；可选：{', '.join(LABS)}（`studygpt lab` 列出全部）。")
    return LABS[name]


def list_labs(write: Callable[[str], None] = print) -> None:
    """`studygpt lab`：每个实验一行。"""
    write("拆掉一个部件的实验 (break-it labs)：先预测，再训练对照组与实验组，按量出来的数判分。")
    for lab in LABS.values():
        write(f"  {lab.name:<12} 第 {int(lab.chapter[:2]):>2} 章  {lab.title}")
    write(f"运行 (run)：studygpt lab NAME [--predict B] [--seed N] [--max-steps N（默认 {LAB_STEPS}）] [--out DIR]")


def ask_prediction(lab: Lab, predict: str | None, interactive: bool) -> str | None:
    """--predict 给了就用它；否则在终端里问；都没有时返回 None（只报告，不判你的预测）。"""
    letters = [letter for letter, _ in lab.lettered()]
    if predict is not None:
        if predict.upper() not in letters:
            raise StudyGPTError(f"--predict {predict} 不是实验 {lab.name} 的选项；请用 {' / '.join(letters)}。")
        return predict.upper()
    while interactive:
        answer = input(f"你的预测 (your prediction) {'/'.join(letters)}，直接回车跳过：").strip().upper()
        if answer in letters or not answer:
            return answer or None
        print(f"请输入 {' / '.join(letters)} 中的一个。")
    return None


def loss_text(x: float) -> str:
    return "发散 (diverged)" if math.isinf(x) else f"{x:.3f}"


def measured_lines(baseline: Arm, variant: Arm) -> list[str]:
    """两组量出来的数，一项一行：对照组 → 实验组。"""
    rows = [("训练损失 (train loss，最后一段的平均)", loss_text(baseline.train_loss), loss_text(variant.train_loss)),
            ("验证损失 (val loss，只算助手的回答)", loss_text(baseline.val_loss), loss_text(variant.val_loss)),
            ("固定聊天问题 (20 chat prompts)", baseline.chat_score, variant.chat_score),
            ("留出的两位数加法 (held-out sums)", baseline.sums_score, variant.sums_score),
            ("训练 + 考试用时 (seconds)", f"{baseline.seconds:.0f}", f"{variant.seconds:.0f}")]
    return [f"  {label}：对照组 {b} → 实验组 {v}" for label, b, v in rows]


def run_lab(name: str, predict: str | None = None, seed: int = 0, max_steps: int = LAB_STEPS,
            out: str | Path | None = None, progress: bool = True, threads: int | None = None,
            interactive: bool | None = None) -> dict:
    """整个实验。interactive：没给 predict 时要不要在终端里问（默认：标准输入是终端就问）。
    返回并写进 OUT/result.json：两组的数、每个选项成立与否 (held)、你的预测、课程期望的选项 (expected)。"""
    lab = get_lab(name)
    out = Path(out or f"runs/labs/{name}")
    interactive = sys.stdin.isatty() if interactive is None else interactive

    # ===== 1. 问题与预测 =====
    print(f"===== 实验 (lab) {lab.name}：{lab.title} =====")
    print(f"改了什么 (the one change)：{lab.change}")
    print(f"对照组 (baseline) 是快速上手的配方，原样；实验组 (variant) 只改这一处。"
          f"两组同一个种子 {seed}、同样 {max_steps} 步、同样的数据。")
    print(f"\n问题 (question)：{lab.question}")
    for letter, choice in lab.lettered():
        print(f"  {letter}. {choice.text}")
    guess = ask_prediction(lab, predict, interactive)
    print(f"你的预测 (prediction)：{guess}" if guess else
          "没有预测 (no prediction)：只报告量出来的数，不判分（加 --predict B，或在终端里运行）。")

    # ===== 2. 训练两组 =====
    if threads is None and (faster := use_fewer_threads_if_faster()) is not None:
        threads = faster.threads  # 两组用同样多的线程：线程数会改变浮点求和的顺序
        print(f"线程 (threads)：{faster.reason}；两组都用 {threads} 个线程")
    data = quickstart_data(seed)
    arms: dict[str, Arm] = {}
    for key, variant, title in (("baseline", None, "对照组 (baseline)"), ("variant", lab.variant, "实验组 (variant)")):
        print(f"\n训练{title}：{max_steps} 步，然后考试 …", flush=True)
        arms[key] = train_arm(variant, data, seed, max_steps, out / key, progress=progress, threads=threads)
        print(f"  完成 (done)：{arms[key].seconds:.0f} 秒", flush=True)
    baseline, variant = arms["baseline"], arms["variant"]

    # ===== 3. 量出来的数 =====
    print("\n===== 量出来的数 (measured) =====")
    for line in measured_lines(baseline, variant):
        print(line)
    print("  回答样例 (sample replies, greedy)：")
    for prompt in SAMPLE_PROMPTS:
        print(f"    {prompt}  对照组：{baseline.samples[prompt]!r}  实验组：{variant.samples[prompt]!r}")
    picture = plot_runs({"对照组 (baseline)": baseline.history, f"实验组 ({lab.name})": variant.history},
                        out / "curves.png", title=lab.title)
    if picture:
        print(f"  两组的损失曲线 (loss curves)：{picture}")

    # ===== 4. 判分 =====
    print("\n===== 判分 (graded by the measurement) =====")
    held = {letter: bool(choice.holds(baseline, variant)) for letter, choice in lab.lettered()}
    for letter, choice in lab.lettered():
        print(f"  {letter} {'✓ 成立' if held[letter] else '✗ 不成立'}  规则 (rule)：{choice.rule}")
    if guess:
        print(f"你的预测 {guess}：{'成立 (held) ✓' if held[guess] else '没有成立 (did not hold) ✗'}")

    # ===== 5. 为什么 =====
    print("\n===== 为什么 (why) =====")
    for line in lab.why:
        print(f"  {line}")
    print(f"  详见 (read more)：docs/zh/{lab.chapter}")
    result = {"lab": lab.name, "seed": seed, "steps": max_steps, "prediction": guess, "held": held,
              "expected": lab.expected, "baseline": asdict(baseline), "variant": asdict(variant)}
    (out / "result.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return result
