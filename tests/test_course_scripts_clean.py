"""课程让学习者运行的脚本：跑完之后 `git status` 不变，输出里没有成串的英文字体警告。

- docs/scripts/ 下的每个脚本（不带参数，和课程里一样），以及各章 docs/zh/ 提到的每个 benchmarks/ 脚本
  （用它最小、最快的参数；数字无意义，只查它写了哪些文件）。都在仓库根目录、在本进程里运行（runpy），
  和学习者在仓库根目录敲 `python 脚本` 一样：相对路径写进仓库的话，这里就会看到。
- 比的是运行前后 `git status --porcelain` 列出的文件与它们的内容：开发者的工作区本来就有改动也能比
  （已经改过的文件又被改了一次，内容的哈希会变）。写进 runs/（.gitignore 里有它）不算改动。
- 没有中文字体时：画图只打印一行中文安装提示，没有 "Glyph … missing" 这样逐字的英文警告。
"""
import hashlib
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studygpt.corpus.builtin import builtin_conv_path
from studygpt.corpus.read import read_dialogues
from studygpt.model.checkpoint import save_checkpoint
from studygpt.plotting import INSTALL_HINT
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import tiny_model

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "docs" / "scripts"
BENCH = ROOT / "benchmarks"
COURSE_SCRIPTS = sorted(p for p in SCRIPTS.glob("*.py") if p.name != "course_figures.py")  # 后者是共用模块
MENTIONED = sorted({m for p in (ROOT / "docs" / "zh").glob("*.md")
                    for m in re.findall(r"benchmarks/(\w+)\.py", p.read_text(encoding="utf-8"))})

# 各章提到的基准脚本 → 这里用的最小参数（RUN 换成一个极小的检查点，OUT 换成临时目录）
FAST = [
    ("budget_sweep", ["--report", "--record"]),  # 读记录的结果，画图到 runs/budget_sweep/
    ("labs_table", ["--report", "--record"]),  # 读记录的格子，只打印表
    ("export_parity", ["RUN", "--quick"]),
    ("rl_dpo_demo", ["--start", "RUN", "--out", "OUT", "--sft-steps", "1", "--rl-steps", "1", "--dpo-steps", "1"]),
    ("serve_load", ["--step-cost", "--preset", "tiny"]),
    ("serve_load", ["--preset", "tiny", "--requests", "2", "--clients", "1", "--max-batch", "1", "--max-tokens", "4"]),
    ("tokenizer_compare", ["--quick"]),
]
# budget_sweep --quick（要训练两个格子）在 tests/test_budget_sweep.py 里跑，也在那里查 git status 不变
SLOW = [  # 要训练好几个阶段（忙的 2 核机器上两到五分钟）：`pytest -m slow` 才跑
    ("reasoning_demo", ["--quick", "--start", "RUN", "--out", "OUT", "--stages", "think", "rl"]),
    ("labs_table", ["--labs", "no-mask", "--seeds", "0", "--max-steps", "2", "--cells", "OUT/cells.jsonl"]),
]


def label(case: tuple[str, list[str]]) -> str:
    return f"{case[0]} {' '.join(case[1])}"


def git_state() -> dict[str, str]:
    """`git status --porcelain` 的每一项（状态 + 路径）→ 那个文件内容的哈希（文件不在时为空）。
    -z：路径原样给出（中文文件名不转义），改名的项后面多一个原来的路径。"""
    out = subprocess.run(["git", "status", "--porcelain", "-z", "--untracked-files=all"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    entries, state = iter(out.split("\0")), {}
    for entry in entries:
        if not entry:
            continue
        if entry[0] in "RC":
            next(entries)  # 改名、复制：跳过原来的路径
        path = ROOT / entry[3:]
        state[entry] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return state


def run_in_repo(script: Path, argv: list[str], monkeypatch) -> None:
    """像在仓库根目录敲 `python script argv…` 一样运行（本进程里，省掉每次重新导入 torch）。"""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", [str(script.relative_to(ROOT)), *argv])
    monkeypatch.syspath_prepend(str(script.parent))  # 脚本所在目录可导入（course_figures、_common）
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        torch.set_num_threads(threads)  # 有的脚本设成 1 个线程


def assert_clean_after(script: Path, argv: list[str], monkeypatch) -> None:
    before = git_state()
    run_in_repo(script, argv, monkeypatch)
    after = git_state()
    changed = sorted(set(after.items()) ^ set(before.items()))
    assert not changed, f"{script.relative_to(ROOT)} {' '.join(argv)} 改了仓库里的文件：{changed}"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """极小的检查点，代替 runs/quickstart（快速上手要训练 3 分钟）。"""
    dialogues, _ = read_dialogues(builtin_conv_path())
    tokenizer = Tokenizer().build_vocab(t for d in dialogues for t in d)
    return save_checkpoint(tmp_path_factory.mktemp("run") / "quickstart",
                           tiny_model(tokenizer.vocab_size, n_layers=1, max_len=128), tokenizer)


def test_every_mentioned_benchmark_is_run_here():
    covered = {name for name, _ in FAST + SLOW}
    assert MENTIONED and set(MENTIONED) <= covered, f"新提到的基准脚本要加进 FAST 或 SLOW：{set(MENTIONED) - covered}"


@pytest.mark.parametrize("script", COURSE_SCRIPTS, ids=lambda p: p.stem)
def test_course_script_leaves_git_status_unchanged(script, monkeypatch, capsys):
    assert_clean_after(script, [], monkeypatch)
    assert capsys.readouterr().out.strip()


def run_benchmark(name: str, args: list[str], tiny_run: Path, out: Path, monkeypatch) -> None:
    if name == "export_parity":
        pytest.importorskip("transformers")
        pytest.importorskip("gguf")
    argv = [{"RUN": str(tiny_run), "OUT": str(out)}.get(a, a) for a in args]
    assert_clean_after(BENCH / f"{name}.py", argv, monkeypatch)


@pytest.mark.parametrize("case", FAST, ids=label)
def test_mentioned_benchmark_leaves_git_status_unchanged(case, tiny_run, tmp_path, monkeypatch):
    run_benchmark(*case, tiny_run, tmp_path / "out", monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=label)
def test_slow_benchmark_modes_leave_git_status_unchanged(case, tiny_run, tmp_path, monkeypatch):
    run_benchmark(*case, tiny_run, tmp_path / "out", monkeypatch)


def test_benchmark_writes_to_benchmarks_results_only_with_record(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import _common
    assert _common.results_path("x.jsonl", record=False) == Path("runs/benchmarks/x.jsonl")
    assert _common.results_path("x.jsonl", record=True) == BENCH / "results" / "x.jsonl"
    monkeypatch.chdir(tmp_path)
    _common.append_results("x", {"machine": "m"}, [{"a": 1}], record=False)
    assert (tmp_path / "runs" / "benchmarks" / "x.jsonl").read_text(encoding="utf-8").count("\n") == 1


# ===== 没有中文字体时：一行中文提示，没有逐字的英文警告 =====
NO_FONT = """
import sys
from matplotlib import rcParams
import studygpt.plotting as plotting
plotting.CJK_FONT_NAMES = ["No Such Font"]                  # 假装这台机器上没有中文字体
rcParams["font.family"] = ["No Such Family", "sans-serif"]  # 配置里写了一个不存在的字体：findfont 的日志
history = [{"step": 1, "reward": 0.5}, {"step": 2, "reward": 0.7}]
quiet = plotting.quiet_missing_glyphs
plotting.quiet_missing_glyphs = lambda: None                 # 对照：不关警告时画一张
plotting.plot_metric_panels(history, "loud.png", [("reward", "平均奖励 (mean reward)")])
print("=====", file=sys.stderr, flush=True)
plotting.quiet_missing_glyphs = quiet
for name in ("a.png", "b.png"):                              # 画两次：提示只打印一次
    plotting.plot_metric_panels(history, name, [("reward", "平均奖励 (mean reward)")])
"""


def test_a_figure_without_a_cjk_font_prints_one_hint_and_no_glyph_warnings(tmp_path):
    done = subprocess.run([sys.executable, "-c", NO_FONT], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    loud, quiet = done.stderr.split("=====\n")
    assert "Glyph" in loud and "findfont" in loud  # 对照：同样的画法，不关就是一串英文警告
    assert done.stdout + quiet == INSTALL_HINT + "\n"  # 关了：只有一行中文提示，画两次也只说一次
    assert all((tmp_path / name).stat().st_size > 0 for name in ("loud.png", "a.png", "b.png"))
