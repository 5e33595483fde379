"""`studygpt course` 显示真实的进度：在一份练习副本里解出一个练习、写错一个、留空一个，命令给它们打
✓、✗（测试的 assert）、✗（还没写）；不在仓库根目录时只说一行。记分的规则另用假的测试结果检查，不开子进程。"""
import ast
import shutil
from pathlib import Path

import pytest

from studygpt.cli.parser import main
from studygpt.course import (
    FAILED,
    PASSED,
    WAITING,
    CaseResult,
    Chapter,
    exercises_of,
    grade,
)

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "docs" / "exercises"


def function_node(path: Path, name: str) -> ast.FunctionDef:
    return next(n for n in ast.parse(path.read_text(encoding="utf-8")).body
                if isinstance(n, ast.FunctionDef) and n.name == name)


def function_source(path: Path, name: str) -> str:
    node, lines = function_node(path, name), path.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(lines[node.lineno - 1:node.end_lineno])


def replace_function(path: Path, name: str, source: str) -> None:
    """把 path 里的函数 name 整个换成 source（像学习者把 raise NotImplementedError 换成自己的代码）。"""
    node, lines = function_node(path, name), path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:node.lineno - 1]) + source + "".join(lines[node.end_lineno:]), encoding="utf-8")


@pytest.fixture
def exercises(tmp_path) -> Path:
    """docs/exercises 的一份副本（像同学交来的作业），仓库里的文件不动。"""
    return Path(shutil.copytree(EXERCISES, tmp_path / "exercises", ignore=shutil.ignore_patterns("__pycache__")))


def test_course_marks_a_solved_exercise_done_and_the_others_not(exercises, monkeypatch, capsys):
    stub, solution = exercises / "ch01_bigram.py", EXERCISES / "solutions" / "ch01_bigram.py"
    imports = "".join(line for line in solution.read_text(encoding="utf-8").splitlines(keepends=True)
                      if line.startswith(("import ", "from ")))
    replace_function(stub, "count_pairs", imports + function_source(solution, "count_pairs"))  # 1.1 解出来了
    replace_function(stub, "next_char_probs", "def next_char_probs(pairs, char):\n    return {}\n")  # 1.2 写错了
    monkeypatch.chdir(ROOT)  # 1.3 还是空白练习
    assert main(["course", "--chapter", "1", "--exercises", str(exercises)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("第 1 章") and "1/3 完成" in lines[0]
    rows = {line.split()[1]: line.split(maxsplit=3) for line in lines if line.startswith("  ")}
    assert {number: row[0] for number, row in rows.items()} == {"1.1": PASSED, "1.2": FAILED, "1.3": FAILED}
    assert rows["1.1"][2] == "count_pairs" and len(rows["1.1"]) == 3  # 通过的练习不附原因
    assert "assert" in rows["1.2"][3] and "NotImplementedError" in rows["1.3"][3]
    assert "合计 (total)：1 章，3 个练习" in captured.out and "正在运行 1 章练习的测试" in captured.err


def test_outside_the_repository_root_one_line_and_no_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["course"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "仓库根目录" in err and "Traceback" not in err
    monkeypatch.chdir(ROOT)
    assert main(["course", "--chapter", "99"]) == 2
    assert "没有第 99 章" in capsys.readouterr().err


def chapter(number: int, stem: str) -> Chapter:
    c = Chapter(number, f"第 {number} 章", EXERCISES / f"{stem}.py", EXERCISES / f"test_ch{number:02d}.py")
    c.exercises, _ = exercises_of(c.exercise_file, number)
    return c


def raised_in(c: Chapter, name: str) -> list[tuple[str, int]]:
    """一个停在练习 name 里的 traceback：测试文件的一帧，再是练习函数里的一帧。"""
    exercise = next(e for e in c.exercises if e.name == name)
    return [(c.test_file.name, 1), (c.exercise_file.name, exercise.lines[-1])]


def test_a_test_stopped_by_another_exercise_waits_for_it():
    """1.1 还没写：三个测试都停在 count_pairs 里，1.2 与 1.3 没法检查，要先做 1.1（…，不是 ✗）。"""
    c = chapter(1, "ch01_bigram")
    stopped = dict(outcome="failed", message="NotImplementedError: 练习 1.1", frames=raised_in(c, "count_pairs"))
    grade(c, [CaseResult("test_ch01", name, **stopped) for name in (
        "test_count_pairs_counts_neighbours_within_each_text", "test_next_char_probs_are_a_distribution",
        "test_average_nll_is_zero_when_certain_and_ln2_for_a_coin_flip")])
    assert [(e.status, e.reason) for e in c.exercises] == [
        (FAILED, "还没写 (NotImplementedError)"),
        (WAITING, "先做完练习 1.1（它的测试先卡在了那里）"), (WAITING, "先做完练习 1.1（它的测试先卡在了那里）")]


def test_an_assert_in_a_test_of_several_exercises_falls_on_the_one_not_yet_shown_right():
    """第 10 章：两个进程的测试调用三个练习，在 assert 上失败；另两个的单独测试都通过了，所以记在 loss_scale 上。"""
    c = chapter(10, "ch10_ddp")
    grade(c, [CaseResult("test_ch10", "test_rows_for_rank_split_the_batch_evenly", "passed"),
              CaseResult("test_ch10", "test_all_reduce_mean", "passed"),
              CaseResult("test_ch10", "test_two_ranks_with_token_weights_equal_the_full_batch", "failed",
                         "AssertionError: 梯度不等于整批的梯度", [("test_ch10.py", 40)])])
    assert [(e.name, e.status) for e in c.exercises] == [
        ("rows_for_rank", PASSED), ("all_reduce_mean", PASSED), ("loss_scale", FAILED)]
    assert c.exercises[2].reason == "梯度不等于整批的梯度"


def test_a_test_file_that_cannot_be_imported_fails_every_exercise_of_its_chapter():
    c = chapter(15, "ch15_rl")
    grade(c, [CaseResult("test_ch15", "", "failed", "SyntaxError: invalid syntax")])
    assert {e.status for e in c.exercises} == {FAILED} and "SyntaxError" in c.problem
