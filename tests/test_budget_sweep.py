"""benchmarks/budget_sweep.py 本身的测试：--quick 在内置语料上把规则的整条路走一遍（auto 实测、选大小，
和一个固定大小比），结果行的形状对、仓库的 git status 不变，再跑一次时做完的格子全部跳过（可续跑），
--report 打印表格并画图。只查形状，不查某次运行的数字。"""
import json
import os
import tempfile
from pathlib import Path

from studygpt.recipes import sizing
from tests.conftest import load_benchmark
from tests.test_course_scripts_clean import BENCH, assert_clean_after


def test_quick_sweep_writes_one_row_per_cell_leaves_the_repo_clean_skips_on_rerun_and_reports(tmp_path, capsys,
                                                                                               monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # --quick 的新临时目录建在这里
    # 像学习者那样在仓库根目录敲 `python benchmarks/budget_sweep.py --quick`：跑完 git status 不变
    assert_clean_after(BENCH / "budget_sweep.py", ["--quick"], monkeypatch)
    folder, = tmp_path.glob("studygpt_budget_sweep_quick_*")
    results = folder / "budget_sweep.jsonl"
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert [r["size"] for r in rows] == ["auto", "d1"]
    for r in rows:
        assert r["budget_min"] == 0.01 and r["data"] == "base" and r["quick"] is True
        assert r["params"] > 0 and r["steps"] >= 1 and r["epochs"] > 0 and r["tokens_per_s"] > 0
        assert set(r["bpc"]) == {"chatterbot"} and r["bpc"]["chatterbot"] > 0
        assert {"cpu", "date", "machine", "load_start", "load_end", "busy", "wall_s", "distinct_2"} <= set(r)
    auto, d1 = rows
    assert len({auto["pid"], d1["pid"], os.getpid()}) == 3  # 每个格子一个新进程（同一个进程接连训练会越来越慢）
    assert d1["depth"] == 1 and d1["d_model"] == sizing.family_config(1, 1).d_model
    assert auto["depth"] == auto["auto_depth"] and auto["probe_s"] > 0 and auto["probe_vs_train"] > 0
    assert auto["auto_compile"] is False  # 0.01 分钟放不下实测编译

    sweep = load_benchmark("budget_sweep")
    argv = ["--quick", "--results", str(results), "--runs", str(folder)]
    capsys.readouterr()
    sweep.main(argv)  # 再跑：两个格子都做过了
    out = capsys.readouterr().out
    assert out.count("已做过，跳过 (done, skipped)") == 2 and "格子 (cell)" not in out
    assert len(results.read_text(encoding="utf-8").splitlines()) == 2

    sweep.main(argv + ["--report"])
    out = capsys.readouterr().out
    assert "bpc chatterbot" in out and "auto 在 0.1 bpc 以内" in out and "→ d" in out
    assert (folder / "budget_sweep.png").stat().st_size > 0


def test_fixed_size_cells_are_the_sizing_family_with_its_learning_rate():
    """固定大小的格子 dN 与 auto 用同一个家族、同一条学习率规则（不训练，只看设置）。"""
    sweep = load_benchmark("budget_sweep")
    data = {"train": [Path("a.conv")], "val": Path("v.conv"), "eval": {}}
    specs = {size: sweep.cell_spec(5, size, data, Path("out"), None) for size in ("d1", "d2", "auto", "study")}
    for d in (1, 2):
        c = sizing.family_config(d, 1)
        assert specs[f"d{d}"].model == {"d_model": c.d_model, "n_head": c.n_head, "n_layers": d, "max_len": c.max_len}
        assert specs[f"d{d}"].train == {"max_minutes": 5, "lr": sizing.learning_rate(c.d_model)}
    assert specs["d1"].model["d_model"] < specs["d2"].model["d_model"]
    assert specs["auto"].preset == "auto" and specs["auto"].model == {} and specs["study"].preset == "study"


def test_rows_trained_in_a_shared_process_or_superseded_count_as_not_done_and_stay_out_of_the_report(tmp_path):
    sweep = load_benchmark("budget_sweep")
    results = tmp_path / "r.jsonl"
    row = {"budget_min": 5.0, "size": "d1", "data": "base", "cpu": "x"}
    sweep.append_row(results, {**row, "shared_process": True})
    sweep.append_row(results, {**row, "superseded": "old probe rule"})
    assert sweep.done_cells(results) == set() and sweep.read_rows(results) == []
    sweep.append_row(results, row)
    assert sweep.done_cells(results) == {(5.0, "d1", "base", "x", "auto")} and sweep.read_rows(results) == [row]


def test_fp32_cells_train_in_fp32_and_are_kept_apart_from_the_machines_own_precision(tmp_path):
    """--use-amp false：每个格子（auto 的实测也是）关掉 bf16；它们和默认精度的格子各算各的"做过没有"，图里不画。"""
    sweep = load_benchmark("budget_sweep")
    data = {"train": [Path("a.conv")], "val": Path("v.conv"), "eval": {}}
    for size in ["auto", "study", "d2"]:
        assert sweep.cell_spec(5, size, data, tmp_path, None, fp32=True).train["use_amp"] is False
        assert "use_amp" not in sweep.cell_spec(5, size, data, tmp_path, None).train
    results = tmp_path / "r.jsonl"
    row = {"budget_min": 5.0, "size": "auto", "data": "base", "cpu": "x"}
    sweep.append_row(results, {**row, "precision": "fp32"})
    assert sweep.done_cells(results) == {(5.0, "auto", "base", "x", "fp32")}
    assert sweep.cell_key(5, "auto", "base", "x") not in sweep.done_cells(results)


def test_use_amp_is_spelled_like_studygpt_train():
    sweep = load_benchmark("budget_sweep")
    assert sweep.parse_args(["--use-amp", "false"]).use_amp is False and sweep.parse_args([]).use_amp is True
