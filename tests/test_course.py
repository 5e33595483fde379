"""课程练习的检查 (course exercises)：docs/exercises 里的每个练习，用空白练习 (stub) 时它的测试必须失败，
用参考答案 (STUDYGPT_SOLUTIONS=1) 时必须通过——这样练习既不会"白送"，参考答案也不会过时。

主测试套件不直接收集 docs/exercises（pyproject 的 testpaths = tests）：空白练习本来就该失败。
"""
import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "docs" / "exercises"
CHAPTERS = [f"ch{n:02d}" for n in range(1, 11)] + ["ch12", "ch13"]


def public_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]


def stub_file(chapter: str) -> Path:
    files = sorted(EXERCISES.glob(f"{chapter}_*.py"))
    assert len(files) == 1, f"{chapter}: 应有且只有一个练习文件 docs/exercises/{chapter}_*.py，找到 {files}"
    return files[0]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict[str, str]]:
    """在子进程里把 docs/exercises 跑两遍（空白练习、参考答案，同时跑），返回 {模式: {测试名: passed|failed}}。"""
    tmp = tmp_path_factory.mktemp("course")
    runs = {}
    for mode in ("stubs", "solutions"):
        # 两个子进程同时跑，各用 1 个线程：练习里都是极小的张量，多线程只会互相抢 CPU
        env = {**os.environ, "STUDYGPT_SOLUTIONS": "1" if mode == "solutions" else "0", "OMP_NUM_THREADS": "1"}
        report = tmp / f"{mode}.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXERCISES), f"--junitxml={report}"]
        runs[mode] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True), report)
    result = {}
    for mode, (proc, report) in runs.items():
        output, _ = proc.communicate(timeout=300)
        assert report.is_file(), output
        cases = ET.parse(report).getroot().iter("testcase")
        result[mode] = {f"{c.get('classname')}.{c.get('name')}":
                        "failed" if c.find("failure") is not None or c.find("error") is not None else
                        "skipped" if c.find("skipped") is not None else "passed" for c in cases}
    return result


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_has_two_or_three_exercises_with_stub_solution_and_test(chapter):
    stub = stub_file(chapter)
    names = public_functions(stub)
    assert 2 <= len(names) <= 3, f"{stub.name}: 每章 2–3 个练习，现在是 {names}"
    solution = EXERCISES / "solutions" / stub.name
    assert solution.is_file(), f"缺少参考答案 {solution}"
    assert set(public_functions(solution)) >= set(names), f"{solution.name} 没有实现全部练习 {names}"
    assert (EXERCISES / f"test_{chapter}.py").is_file()
    source = stub.read_text(encoding="utf-8")
    assert source.count("raise NotImplementedError") == len(names), f"{stub.name}: 每个练习都应留空 (NotImplementedError)"


def test_every_exercise_test_fails_on_the_stubs(outcomes):
    tests = outcomes["stubs"]
    assert len(tests) >= 2 * len(CHAPTERS)
    passed = [name for name, outcome in tests.items() if outcome != "failed"]
    assert not passed, f"这些测试在空白练习上没有失败，等于白送：{passed}"
    for chapter in CHAPTERS:
        assert sum(f"test_{chapter}" in name for name in tests) >= 2, f"{chapter} 的测试少于 2 个"


def test_every_exercise_test_passes_with_the_solutions(outcomes):
    assert set(outcomes["solutions"]) == set(outcomes["stubs"])
    failed = [name for name, outcome in outcomes["solutions"].items() if outcome != "passed"]
    assert not failed, f"参考答案没有通过：{failed}"
