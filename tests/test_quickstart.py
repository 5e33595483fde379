"""快速上手的冒烟测试：几步训练，检查每个阶段和每个产物都出现（真正 3 分钟的效果见 README 与 benchmarks）。"""
from studygpt.recipes.quickstart import run_quickstart


def test_quickstart_runs_every_stage_and_writes_artifacts(tmp_path, capsys):
    out = tmp_path / "quickstart"
    result = run_quickstart(out=str(out), minutes=1.0, max_steps=4, chat=False, progress=False,
                            exam_conversations=3)
    printed = capsys.readouterr().out
    for n, title in enumerate(["读语料", "建词表", "建模型", "训练", "保存与报告", "聊天"], start=1):
        assert f"===== {n}. {title}" in printed
    assert "[<|end|>]" in printed                      # 看到了带掩码的例子
    assert "合计 (total)" in printed                    # 参数分布
    assert "考一考" in printed                          # 训练中途的回答
    assert f"studygpt chat {out}" in printed            # stdin 不是终端：打印聊天命令
    for name in ["last/model.safetensors", "loss_curve.png", "metrics.jsonl", "report.md"]:
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text(encoding="utf-8")
    for section in ["成绩 (scores)", "耗时 (time per stage)", "留出的两位数加法", "5 轮对话的第 5 轮", "最终指标",
                    "bits/char", "回答样例"]:
        assert section in report, section
    assert result.summary["steps"] == 4 and 0 <= result.addition_accuracy <= 1
    assert len(result.turn_accuracy) == 5 and all(0 <= a <= 1 for a in result.turn_accuracy)
    assert "3 段 5 轮对话" in printed and "第 5 轮" in printed
    assert set(result.stage_seconds) >= {"训练 (train)", "合计 (total)"}
