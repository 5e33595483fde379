"""训练报告 report.md (the report card)：每次训练结束都写一份，`studygpt train` 与快速上手共用。

记录：设置、数据统计与机器；耗时与 tokens/s；损失曲线；最终指标（与 `studygpt eval` 同一份代码算出）；回答样例。
"""
from __future__ import annotations

from pathlib import Path

from studygpt.evaluate import evaluate_model, format_table
from studygpt.hardware import describe_machine


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run_sections(trainer, summary: dict, metrics: dict, data_stats: dict) -> list[str]:
    """一次训练的通用报告段落。metrics 是 evaluate_model 的结果，data_stats 是 {说明: 数值}。"""
    c, t = trainer.model.config, trainer.config
    replies = metrics.get("replies", [])[:8]
    return [
        f"机器 (machine): {describe_machine()} · 设备 {trainer.device} · 精度 (precision): {trainer.precision.name}"
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
        "![损失曲线 (loss curve)](loss_curve.png)",
        "## 最终指标 (final metrics, 与 `studygpt eval` 相同)",
        format_table({Path(trainer.out_dir).name: metrics}),
        "## 回答样例 (sample replies)",
        md_table(["提示 (prompt)", "种子", "回答 (reply)"], [[r["prompt"], r["seed"], r["reply"]] for r in replies]),
    ]


def evaluate_for_report(trainer, val_dialogues) -> dict:
    """报告用的指标：验证集上的 loss/bpc（最多 500 段）+ 内置提示集上的生成指标（种子 0）。"""
    return evaluate_model(trainer.model, trainer.tokenizer, dialogues=list(val_dialogues)[:500] or None, seeds=(0,))


def write_report(out_dir, title: str, sections: list[str]) -> Path:
    path = Path(out_dir) / "report.md"
    path.write_text(f"# {title}\n\n" + "\n\n".join(sections) + "\n", encoding="utf-8")
    return path
