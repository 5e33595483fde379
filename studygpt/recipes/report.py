"""训练报告 report.md (the report card)：每次训练结束都写一份，`studygpt train` 与快速上手共用。

记录：设置、数据统计与机器；耗时与 tokens/s；过拟合了吗（损失曲线与最低点）；
最终指标（best/ 的模型，没存 best/ 时是训练结束时的模型；与 `studygpt eval` 同一份代码算出）；回答样例。
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from studygpt.evaluation.metrics import evaluate_model, format_table
from studygpt.model.checkpoint import load_model
from studygpt.training.trainer import TransformerTrainer


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run_sections(trainer, summary: dict, metrics: dict, data_stats: dict) -> list[str]:
    """一次训练的通用报告段落。metrics 是 evaluate_model 的结果，data_stats 是 {说明: 数值}。"""
    c, t = trainer.model.config, trainer.config
    replies = metrics.get("replies", [])[:8]
    return [
        f"机器 (machine): {trainer.precision.machine} · 设备 {trainer.device} · 精度 (precision): {trainer.precision.name}"
        f"（{trainer.precision.reason}）",
        "## 设置 (settings)",
        md_table(["项", "值"], [
            ["模型 (model)", f"d_model={c.d_model}, n_head={c.n_head}, n_layers={c.n_layers}, max_len={c.max_len}, "
                             f"vocab={c.vocab_size}, 参数 {trainer.model.num_params():,}"],
            ["训练 (train)", f"lr={t.lr}, batch={t.batch_size}×{t.seq_len}, accum={t.grad_accum_steps}, "
                             f"wd={t.weight_decay}, warmup={t.warmup_ratio}, epochs={t.epochs}, max_steps={t.max_steps}, "
                             f"max_minutes={t.max_minutes}, seed={t.seed}"]]),
        "## 数据 (data)",
        md_table(["项", "值"], [[k, v] for k, v in data_stats.items()]),
        "## 训练 (training)",
        md_table(["项", "值"], [["优化步数 (steps)", summary["steps"]], ["训练时间 (s)", f"{summary['elapsed_s']:.1f}"],
                               ["训练词元 (tokens, 不含填充)", f"{summary['tokens']:,}"],
                               ["速度 (tokens/s)", f"{summary['tokens_per_s']:,.0f}"],
                               ["最终训练损失 (train loss)", f"{summary['train_loss']:.3f}"]]),
        *overfit_section(trainer.guard, summary),
        f"## 最终指标 (final metrics, {'best/ ' if trainer.config.keep_best else '训练结束时'}的模型, 与 `studygpt eval` 相同)",
        format_table({Path(trainer.out_dir).name: metrics}),
        "## 回答样例 (sample replies)",
        md_table(["提示 (prompt)", "种子", "回答 (reply)"], [[r["prompt"], r["seed"], r["reply"]] for r in replies]),
    ]


def overfit_section(guard, summary: dict) -> list[str]:
    """"过拟合了吗？"：验证损失的最低点与最后一次，一句结论，和损失曲线。guard 是训练器的 OverfitGuard。"""
    title, curve = "## 过拟合了吗？ (did it overfit?)", "![损失曲线 (loss curve)：训练与验证损失，虚线是 epoch 边界](loss_curve.png)"
    if not guard.points:
        return [title, "没有验证集，无法判断 (no validation set)；请给 --val，或让训练语料留出一部分。", curve]
    best, last = guard.best, guard.points[-1]
    rise = last["val_loss"] / best["val_loss"] - 1
    train = {k: "—" if p["train_loss"] is None else f"{p['train_loss']:.3f}" for k, p in (("best", best), ("last", last))}
    if best is last:
        verdict = (f"没有 (no)：验证损失到最后一次验证还在创新低（{best['val_loss']:.3f}）。"
                   "模型还没学够：可以训练更久，或者用更大的模型。")
    elif guard.warned or summary.get("early_stopped"):
        verdict = (f"是 (yes)：验证损失在第 {best['epoch'] + 1} 个 epoch（第 {best['step']} 步）降到最低 "
                   f"{best['val_loss']:.3f}，之后升到 {last['val_loss']:.3f}（+{rise:.1%}），训练损失却从 "
                   f"{train['best']} 降到 {train['last']}。" + guard.where_best)
    else:
        verdict = (f"还不明显 (not clearly)：最低点在第 {best['step']} 步（{best['val_loss']:.3f}），"
                   f"最后一次 {last['val_loss']:.3f}（{rise:+.1%}）。" + guard.where_best)
    if summary.get("early_stopped"):
        verdict += f"训练因早停 (early stopping) 在第 {summary['steps']} 步结束。"
    rows = [[name, p["step"], p["epoch"] + 1, f"{p['val_loss']:.3f}", train[key]]
            for name, key, p in [("最低 (best)", "best", best), ("最后 (last)", "last", last)]]
    return [title, verdict, md_table(["", "步 (step)", "第几个 epoch", "验证损失 (val loss)", "训练损失 (train loss)"], rows),
            f"共验证 {len(guard.points)} 次。", curve]


def report_model(trainer):
    """报告评估的模型：有 best/ 时用它（`studygpt chat` 默认加载的就是它），否则用训练结束时的模型。"""
    best_dir = Path(trainer.out_dir) / "best"
    if trainer.guard.best is not None and (best_dir / "model.safetensors").is_file():
        return load_model(best_dir, trainer.device, announce=False)[0]
    return trainer.model


def evaluate_for_report(trainer, val_dialogues) -> dict:
    """报告用的指标（best/ 的模型）：验证集上的 loss/bpc（最多 500 段）+ 内置提示集上的生成指标（种子 0）。"""
    return evaluate_model(report_model(trainer), trainer.tokenizer, dialogues=list(val_dialogues)[:500] or None,
                          seeds=(0,))


def write_report(out_dir, title: str, sections: list[str]) -> Path:
    path = Path(out_dir) / "report.md"
    path.write_text(f"# {title}\n\n" + "\n\n".join(sections) + "\n", encoding="utf-8")
    return path


def finish_run(trainer: TransformerTrainer, summary: dict, val: list, log: Callable[[str], None]) -> dict:
    """训练结束：写 summary.json 与 report.md（指标与 `studygpt eval` 同一份代码）。"""
    from studygpt.recipes.report import evaluate_for_report, run_sections, write_report
    if not trainer.dist.is_main:
        return summary  # 报告只由 0 号进程写
    log("评估并写报告 (evaluating for report.md)…")
    metrics = evaluate_for_report(trainer, val)
    summary = {**summary, "metrics": {k: v for k, v in metrics.items() if k != "replies"}}
    write_summary(trainer.out_dir, summary)
    report = write_report(trainer.out_dir, f"训练报告 (training report): {trainer.out_dir}",
                          run_sections(trainer, summary, metrics, trainer.data_stats))
    log(f"报告 (report): {report}")
    return summary


def write_summary(out: str | Path, summary: dict) -> None:
    Path(out, "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
