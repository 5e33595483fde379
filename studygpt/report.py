"""训练报告 report.md：设置、每个阶段的耗时、最终损失、中途的回答样例、考试成绩。"""
from __future__ import annotations

from pathlib import Path

from studygpt.hardware import describe_machine


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_quickstart_report(result, trainer, samples, chat_rows, addition_rows) -> Path:
    """写 runs/NAME/report.md，返回它的路径。samples: [(时刻, [回答…])]，与 quickstart 的固定问题对应。"""
    from studygpt.quickstart import SHOW_PROMPTS
    s, c, t = result.summary, trainer.model.config, trainer.config
    val = s.get("val") or {}
    wrong_add = [(q, a, r) for (q, a), r, ok in addition_rows if not ok]
    parts = [
        "# 快速上手报告 (quick-start report)",
        f"机器 (machine): {describe_machine()} · 精度 (precision): {trainer.precision.name}",
        "## 设置 (settings)",
        _table(["项", "值"], [["模型", f"d_model={c.d_model}, n_head={c.n_head}, n_layers={c.n_layers}, "
                                       f"max_len={c.max_len}, vocab={c.vocab_size}, 参数 {trainer.model.num_params():,}"],
                            ["训练", f"lr={t.lr}, batch={t.batch_size}×{t.seq_len}, wd={t.weight_decay}, "
                                     f"warmup={t.warmup_ratio}, 时间预算 {t.max_minutes} 分钟, max_steps={t.max_steps}, seed={t.seed}"]]),
        "## 耗时 (time)",
        _table(["阶段 (stage)", "秒 (s)"], [[k, f"{v:.1f}"] for k, v in result.stage_seconds.items()]),
        "## 训练结果 (results)",
        _table(["指标", "值"], [["优化步数 (steps)", s["steps"]], ["训练词元 (tokens)", f"{s['tokens']:,}"],
                               ["速度 (tokens/s)", f"{s['tokens_per_s']:,.0f}"],
                               ["最终训练损失 (train loss)", f"{s['train_loss']:.3f}"],
                               ["验证损失 (val loss)", f"{val.get('loss', float('nan')):.3f}"],
                               ["验证 bits/char", f"{val.get('bpc', float('nan')):.3f}"],
                               ["固定聊天问题答对 (chat prompts)", f"{result.chat_accuracy:.0%} ({sum(r[2] for r in chat_rows)}/{len(chat_rows)})"],
                               ["留出加法题答对 (held-out addition)", f"{result.addition_accuracy:.1%} ({len(addition_rows) - len(wrong_add)}/{len(addition_rows)})"]]),
        "![损失曲线 (loss curve)](loss_curve.png)",
        "## 训练过程中的回答 (replies during training, greedy)",
        _table(["时刻"] + SHOW_PROMPTS, [[when] + replies for when, replies in samples]),
        "## 固定聊天问题 (fixed chat prompts)",
        _table(["问题", "回答", "对吗"], [[p["prompt"], r, "✓" if ok else "✗"] for p, r, ok in chat_rows]),
        "## 答错的加法题 (wrong held-out sums)",
        _table(["问题", "标准答案", "回答"], [list(x) for x in wrong_add[:20]]) if wrong_add else "全部答对。",
    ]
    path = Path(trainer.out_dir) / "report.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path
