"""课程进度 (course status)：`studygpt course` 按顺序列出 docs/zh/ 的各章，运行每章练习的测试，给每个练习打 ✓ / ✗。

这是老师或学习小组看的一页：哪些练习做完了、哪些没通过、卡在哪里。测试就是 `pytest docs/exercises` 的那一批，
在一个子进程里运行（检查你的答案，STUDYGPT_SOLUTIONS=0），结果从 pytest 的 junitxml 报告里读。

测试怎样记到练习上 (which exercise a test result belongs to)：
1. 一个测试检查它调用的练习：测试函数里出现的 `ex.名字`（`ex = load("chNN_…")`）。
2. 测试失败时先看 traceback 里最深的、落在练习文件 chNN_*.py 里的那一帧：它在哪个练习函数里
   （还没写的 NotImplementedError，或者你的代码抛了异常），就记在哪个练习上。
3. 失败在测试自己的 assert 上：只调用一个练习的，记在它上面；调用几个的，先排除各自的单独测试已经通过的练习，
   剩下的里已经记了错的就算它的，否则记在剩下的每一个上。
4. ✓ = 没记错、至少一个测试通过；✗ = 记了错；… = 没记错，可它的测试都先卡在了别的练习上（先做那一个）。
"""
from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from studygpt.errors import StudyGPTError

PASSED, FAILED, WAITING = "✓", "✗", "…"
LEGEND = f"{PASSED} 通过 (passed) · {FAILED} 没通过 (failed) · {WAITING} 测试先卡在了同一章别的练习上 (waiting on another exercise)"
TIMEOUT_S = 600  # 全部 17 章的练习测试在 2 核 CPU 上十几秒；十分钟还没完，多半是哪个练习写成了死循环
FRAME = re.compile(r"^(\S[^\n]*?\.py):(\d+):", re.M)  # traceback 里每一帧的 "文件:行号:"（pytest --tb=long 的写法）


@dataclass
class Exercise:
    number: str       # "15.1"：第 15 章练习文件里的第 1 个公开函数
    name: str         # 函数名，如 group_advantages
    lines: range      # 函数在练习文件里占的行：把 traceback 的一帧对应到练习
    status: str = WAITING
    reason: str = ""  # ✗ 与 … 时的一句话


@dataclass
class Chapter:
    number: int
    title: str                       # 这一章 Markdown 的第一行（去掉 "# "）
    exercise_file: Path | None       # chNN_*.py
    test_file: Path | None           # test_chNN.py
    exercises: list[Exercise] = field(default_factory=list)
    problem: str = ""                # 这一章的练习没法检查时的原因（缺文件、语法错误、测试没能导入……）


@dataclass
class CaseResult:
    module: str                      # test_ch15
    name: str                        # 测试函数名；测试文件没能导入时为 ""
    outcome: str                     # passed | failed | skipped
    message: str = ""                # 失败时 pytest 的摘要，如 "NotImplementedError: 练习 15.1：组相对优势"
    frames: list[tuple[str, int]] = field(default_factory=list)  # traceback 的每一帧 (文件名, 行号)，从浅到深


# ===== 1. 找到各章与它们的练习 =====
def find_chapters(root: Path, exercises: Path | None = None) -> list[Chapter]:
    """root/docs/zh/NN_*.md 的各章（按编号），每章配上 exercises（默认 root/docs/exercises）里的练习文件与测试文件。"""
    if exercises is not None and not exercises.is_dir():
        raise StudyGPTError(f"练习目录 {exercises} 不存在或不是目录 (not a folder)：请给 docs/exercises 或它的一份副本。")
    pages = sorted((root / "docs" / "zh").glob("[0-9][0-9]_*.md"))
    if not pages:
        raise StudyGPTError(f"这里（{root}）没有课程 docs/zh/NN_*.md：请在仓库根目录（有 docs/ 的那一层）运行 `studygpt course`。")
    exercises = exercises or root / "docs" / "exercises"
    if not exercises.is_dir():
        raise StudyGPTError(f"仓库里没有练习目录 {exercises}：请在仓库根目录运行，或用 --exercises 指定练习目录。")
    chapters = []
    for page in pages:
        nn = page.name[:2]
        title = page.read_text(encoding="utf-8").split("\n", 1)[0].lstrip("#").strip() or page.stem
        files = sorted(exercises.glob(f"ch{nn}_*.py"))
        test = exercises / f"test_ch{nn}.py"
        chapter = Chapter(int(nn), title, files[0] if len(files) == 1 else None, test if test.is_file() else None)
        if chapter.exercise_file is None:
            chapter.problem = f"练习文件应有且只有一个 ch{nn}_*.py，{exercises} 里有 {len(files)} 个"
        elif chapter.test_file is None:
            chapter.problem = f"缺少测试文件 {test}"
        else:
            chapter.exercises, chapter.problem = exercises_of(chapter.exercise_file, chapter.number)
        chapters.append(chapter)
    return chapters


def exercises_of(path: Path, chapter: int) -> tuple[list[Exercise], str]:
    """练习文件里的公开函数，按出现的顺序编号 → (练习列表, 问题)；文件有语法错误时列表为空、问题说出第几行。"""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError as err:
        return [], f"{path.name} 第 {err.lineno} 行有语法错误 (SyntaxError)：{err.msg}"
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    return [Exercise(f"{chapter}.{i}", f.name, range(f.lineno, f.end_lineno + 1)) for i, f in enumerate(functions, 1)], ""


def exercises_per_test(test_file: Path) -> dict[str, set[str]]:
    """{测试函数名: 它调用的练习名}：测试函数里出现的 `ex.名字`，ex 是模块里 `ex = load(…)` 得到的名字。"""
    tree = ast.parse(test_file.read_text(encoding="utf-8"))
    aliases = {target.id for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
               and getattr(node.value.func, "id", None) == "load" for target in node.targets if isinstance(target, ast.Name)}
    return {node.name: {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
                        and isinstance(n.value, ast.Name) and n.value.id in aliases}
            for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


# ===== 2. 在子进程里跑测试，读 junitxml =====
def run_exercise_tests(test_files: list[Path], cwd: Path) -> list[CaseResult]:
    """用 pytest 跑这些测试文件（一个子进程），返回每个测试的结果。cwd 是仓库根目录：测试要 `import studygpt`。"""
    if importlib.util.find_spec("pytest") is None:
        raise StudyGPTError('检查练习要用 pytest：pip install -e ".[test]"（或 pip install pytest）。')
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        # 一章的测试文件导入失败时，别的章照样跑 (--continue-on-collection-errors)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=long", "--continue-on-collection-errors",
               f"--junitxml={report}", *map(str, test_files)]
        # 检查的是你的答案，不是参考答案；练习里都是极小的张量，1 个线程最快
        env = {**os.environ, "STUDYGPT_SOLUTIONS": "0", "OMP_NUM_THREADS": "1"}
        try:
            done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise StudyGPTError(f"练习的测试 {TIMEOUT_S // 60} 分钟还没跑完：是不是哪个练习里有死循环？"
                                "用 `pytest docs/exercises -k chNN -x` 单独跑那一章看看。") from None
        if not report.is_file():
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["（没有输出）"]
            raise StudyGPTError(f"pytest 没能运行练习的测试（退出码 {done.returncode}）：{last[0]}")
        return read_report(report)


def read_report(report: Path) -> list[CaseResult]:
    """pytest 的 junitxml → CaseResult 列表。测试文件没能导入时，pytest 记一条 name 为模块路径、classname 为空的错误。"""
    results = []
    for case in ET.parse(report).getroot().iter("testcase"):
        classname, name = case.get("classname") or "", case.get("name") or ""
        module, name = (classname.split(".")[-1], name.split("[")[0]) if classname else (name.split(".")[-1], "")
        problem = case.find("failure")
        problem = case.find("error") if problem is None else problem
        if problem is None:
            results.append(CaseResult(module, name, "skipped" if case.find("skipped") is not None else "passed"))
            continue
        text = problem.text or ""
        message = problem.get("message") if name else ""  # 导入失败时 message 只是 "collection failure"
        results.append(CaseResult(module, name, "failed", message or last_error_line(text),
                                  [(Path(f).name, int(n)) for f, n in FRAME.findall(text)]))
    return results


def last_error_line(text: str) -> str:
    """traceback 里最后一行 "E   …"（pytest 标出异常的行），没有时为空。"""
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return errors[-1] if errors else ""


# ===== 3. 按规则把结果记到练习上 =====
def short_reason(result: CaseResult) -> str:
    first = result.message.strip().split("\n", 1)[0] if result.message.strip() else "测试没通过"
    if first.startswith("NotImplementedError"):
        return "还没写 (NotImplementedError)"
    first = first.removeprefix("AssertionError: ")
    return first if len(first) <= 100 else first[:99] + "…"


def crashed_in(chapter: Chapter, result: CaseResult) -> Exercise | None:
    """traceback 里最深的、落在这一章练习函数里的一帧属于哪个练习（落在 _helper 里的帧往浅处找）。"""
    for file, line in reversed(result.frames):
        if file == chapter.exercise_file.name:
            found = next((e for e in chapter.exercises if line in e.lines), None)
            if found:
                return found
    return None


def grade(chapter: Chapter, results: list[CaseResult]) -> None:
    """按模块说明里的规则，给 chapter 的每个练习定 status 与 reason。results 可以含别的章的结果。"""
    if chapter.problem or not chapter.exercises:
        for e in chapter.exercises:
            e.status, e.reason = FAILED, chapter.problem
        chapter.problem = chapter.problem or "练习文件里没有练习函数"
        return
    mine = [r for r in results if r.module == chapter.test_file.stem]
    broken = next((r for r in mine if not r.name), None)
    if broken or not mine:
        chapter.problem = f"测试没能运行：{short_reason(broken)}" if broken else "测试没有运行（pytest 没有报告这一章）"
        for e in chapter.exercises:
            e.status, e.reason = FAILED, "测试没能运行"
        return
    by_name = {e.name: e for e in chapter.exercises}
    uses = exercises_per_test(chapter.test_file)
    called = {r.name: [by_name[n] for n in sorted(uses.get(r.name, ())) if n in by_name] for r in mine}
    blamed: dict[str, str] = {}               # 练习名 → 第一个记到它头上的失败的原因
    culprits: dict[str, list[Exercise]] = {}  # 失败的测试 → 记到了哪些练习上
    passed_alone = {called[r.name][0].name for r in mine if r.outcome == "passed" and len(called[r.name]) == 1}
    several = []
    for r in mine:
        if r.outcome != "failed":
            continue
        crashed = crashed_in(chapter, r)
        if crashed or len(called[r.name]) == 1:  # 规则 2，或只调用一个练习的 assert（规则 3 的前一半）
            culprits[r.name] = [crashed or called[r.name][0]]
            blamed.setdefault(culprits[r.name][0].name, short_reason(r))
        else:
            several.append(r)
    for r in several:  # 规则 3 的后一半：调用几个练习的测试在 assert 上失败
        suspects = [e for e in called[r.name] if e.name not in passed_alone] or called[r.name]
        culprits[r.name] = [e for e in suspects if e.name in blamed] or suspects
        for e in culprits[r.name]:
            blamed.setdefault(e.name, short_reason(r))
    for e in chapter.exercises:
        mine_tests = [r for r in mine if e in called[r.name]]
        waiting_on = sorted({c.number for r in mine_tests for c in culprits.get(r.name, []) if c is not e})
        if e.name in blamed:
            e.status, e.reason = FAILED, blamed[e.name]
        elif any(r.outcome == "passed" for r in mine_tests):
            e.status, e.reason = PASSED, ""
        elif waiting_on:
            e.status, e.reason = WAITING, f"先做完练习 {'、'.join(waiting_on)}（它的测试先卡在了那里）"
        else:
            e.status, e.reason = WAITING, "没有测试调用它" if not mine_tests else "它的测试被跳过了 (skipped)"


# ===== 4. 整理成一页 =====
def course_status(root: Path, exercises: Path | None = None, chapter: int | None = None,
                  announce: Callable[[str], None] = print) -> list[Chapter]:
    """找到各章（或只找第 chapter 章）→ 跑它们的练习测试 → 给每个练习打分。announce 说一句"正在运行"。"""
    chapters = find_chapters(root, exercises)
    if chapter is not None:
        chosen = [c for c in chapters if c.number == chapter]
        if not chosen:
            raise StudyGPTError(f"没有第 {chapter} 章：课程是第 {chapters[0].number}–{chapters[-1].number} 章。")
        chapters = chosen
    files = [c.test_file for c in chapters if c.exercises and not c.problem]
    if files:
        announce(f"正在运行 {len(files)} 章练习的测试 (running the exercise tests) …")
    results = run_exercise_tests(files, root) if files else []
    for c in chapters:
        grade(c, results)
    return chapters


def format_chapter(chapter: Chapter) -> str:
    """一章：标题与完成数，每个练习一行（状态、编号、函数名、原因）。"""
    done = sum(e.status == PASSED for e in chapter.exercises)
    lines = [f"{chapter.title}  ·  {done}/{len(chapter.exercises)} 完成 (done)"]
    if chapter.problem:
        lines.append(f"  {FAILED} {chapter.problem}")
    width = max((len(e.name) for e in chapter.exercises), default=0)
    lines += [f"  {e.status} {e.number:<5} {e.name:<{width}}  {e.reason}".rstrip() for e in chapter.exercises]
    return "\n".join(lines)


def format_course(chapters: list[Chapter]) -> str:
    """全部章节，最后一行合计与图例。"""
    everything = [e for c in chapters for e in c.exercises]
    counts = " · ".join(f"{mark} {sum(e.status == mark for e in everything)}" for mark in (PASSED, FAILED, WAITING))
    total = f"合计 (total)：{len(chapters)} 章，{len(everything)} 个练习：{counts}"
    return "\n\n".join(format_chapter(c) for c in chapters) + f"\n\n{total}\n{LEGEND}"
