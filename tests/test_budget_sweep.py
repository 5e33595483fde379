"""benchmarks/budget_sweep.py 本身的测试：--quick 在内置语料上把每个格子走一遍，结果行的形状对，
再跑一次时做完的格子全部跳过（可续跑），--report 打印表格并画图。只查形状，不查某次运行的数字。"""
import json

import pytest

from tests.conftest import load_benchmark


@pytest.mark.slow  # 三个格子各要训练、评估、生成 30 条回答：忙的 2 核机器上约 4.5 分钟（空闲时预计快得多，未量）
def test_quick_sweep_writes_one_row_per_cell_skips_them_on_rerun_and_reports(tmp_path, capsys):
    sweep = load_benchmark("budget_sweep")
    results = tmp_path / "sweep.jsonl"
    # 只用一个极小的预算（--quick 默认两个），让测试在几十秒内跑完：auto、d1、d2 三个格子
    argv = ["--quick", "--budgets", "0.03", "--results", str(results), "--runs", str(tmp_path / "runs")]
    sweep.main(argv)
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert [r["size"] for r in rows] == ["auto", "d1", "d2"]
    for r in rows:
        assert r["budget_min"] == 0.03 and r["data"] == "base" and r["quick"] is True
        assert r["params"] > 0 and r["steps"] >= 1 and r["epochs"] > 0 and r["tokens_per_s"] > 0
        assert set(r["bpc"]) == {"chatterbot"} and r["bpc"]["chatterbot"] > 0
        assert {"cpu", "date", "machine", "load_start", "load_end", "busy", "wall_s", "distinct_2"} <= set(r)
    assert [r["depth"] for r in rows[1:]] == [1, 2] and rows[1]["params"] < rows[2]["params"]
    auto = rows[0]
    assert auto["depth"] == auto["auto_depth"] and auto["probe_s"] > 0 and auto["probe_vs_train"] > 0

    capsys.readouterr()
    sweep.main(argv)  # 再跑：三个格子都做过了
    out = capsys.readouterr().out
    assert out.count("已做过，跳过 (done, skipped)") == 3 and "格子 (cell)" not in out
    assert len(results.read_text(encoding="utf-8").splitlines()) == 3

    sweep.main(argv + ["--report"])
    out = capsys.readouterr().out
    assert "bpc chatterbot" in out and "auto 在 0.1 bpc 以内" in out and "→ d" in out
    assert (tmp_path / "runs" / "budget_sweep.png").stat().st_size > 0
