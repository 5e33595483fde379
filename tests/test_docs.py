"""文档不会过时 (docs cannot rot)：课程 docs/zh/ 各章 ```bash 代码块里的每条命令都真正运行一遍。

- 命令在一个临时工作目录里运行，它像一个刚检出的仓库：有 docs/scripts 和 studygpt/corpus，
  脚本画的图写进临时目录，不改仓库里的图；
- 标着 `<!-- needs: trained run -->` 的代码块读训练好的模型 runs/quickstart：测试先在临时目录里存一个极小的检查点；
  只是把输出写进 runs/（如 `tokenizer train --out runs/course/…`）的命令不用标；
- 命令在本进程里执行（`studygpt …` 调 cli.main，`python docs/…` 用 runpy），省掉每条命令重新导入 torch 的几秒；
- 不需要训练好的模型的命令，真实输出的第一行必须和文档里贴的一样。
另外检查：相对链接指向的文件存在，链接文字里写的函数/类真的定义在链接的文件里，每章有图、有练习。
"""
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from studygpt.cli.parser import main as cli_main
from studygpt.corpus.builtin import builtin_conv_path
from studygpt.corpus.read import read_dialogues
from studygpt.model.checkpoint import save_checkpoint
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import tiny_model

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "docs" / "zh"
CHAPTERS = sorted(COURSE.glob("[0-9][0-9]_*.md"))
NEEDS_RUN = "<!-- needs: trained run -->"
TRAINED_RUN = "runs/quickstart"  # 课程里"训练好的模型"就是快速上手的这一个
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n(?:\n```text\n(.*?)^```)?", re.S | re.M)


@dataclass
class Command:
    chapter: str
    block: int  # 第几个 ```bash 块：标记是按块打的
    line: str
    needs_run: bool
    first_output_line: str | None  # 文档里紧跟着的 ```text 块的第一行


def commands_of(path: Path) -> list[Command]:
    text = path.read_text(encoding="utf-8")
    found = []
    for block, match in enumerate(m for m in FENCE.finditer(text) if m.group(1) == "bash"):
        before = text[:match.start()].rstrip().splitlines()
        needs_run = bool(before) and before[-1].strip() == NEEDS_RUN
        output = match.group(3)
        for line in match.group(2).splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                found.append(Command(path.name, block, line.strip(), needs_run,
                                     output.splitlines()[0] if output else None))
    return found


ALL_COMMANDS = [c for path in CHAPTERS for c in commands_of(path)]


def test_course_chapters_are_in_order_and_have_an_index():
    assert [p.name[:2] for p in CHAPTERS] == [f"{n:02d}" for n in range(1, 18)]
    index = (COURSE / "README.md").read_text(encoding="utf-8")
    for path in CHAPTERS:
        assert f"({path.name})" in index, f"docs/zh/README.md 没有链接 {path.name}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_code_links_command_picture_and_exercises(path):
    text = path.read_text(encoding="utf-8")
    assert "](../../studygpt/" in text, "每章都要链接它讲的代码文件"
    assert commands_of(path), "每章至少一条能运行的命令（```bash 块）"
    images = re.findall(r"!\[[^\]]*\]\((img/[^)]+\.png)\)", text)
    assert images, "每章一张图（img/*.png）"
    for image in images:
        assert (COURSE / image).is_file(), image
    exercises = text.split("## 练习")[-1]
    assert "## 练习" in text and f"pytest docs/exercises -k ch{path.name[:2]}" in exercises


@pytest.mark.parametrize("path", CHAPTERS + [COURSE / "README.md"], ids=lambda p: p.stem)
def test_links_point_to_existing_files_and_named_functions(path):
    text = path.read_text(encoding="utf-8")
    for label, target in re.findall(r"\[([^\]]*)\]\(([^)#\s]+)\)", text):
        if target.startswith("http"):
            continue
        linked = (path.parent / target).resolve()
        assert linked.exists(), f"{path.name}: 链接的 {target} 不存在"
        name = re.fullmatch(r"`([A-Za-z_][\w.]*)`", label)
        if name and linked.suffix == ".py":  # [`Class.method`](../../studygpt/x.py)：每一段都要在文件里定义
            source = linked.read_text(encoding="utf-8")
            for part in name.group(1).split("."):
                assert re.search(rf"^\s*(def|class) {part}\b", source, re.M), f"{path.name}: {target} 里没有 {part}"


def test_every_shown_command_is_checked():
    """```bash 块里只放本测试会运行的命令；只展示、不运行的命令放进 ```sh 块。
    一个块里有命令读训练好的模型 (runs/quickstart) 时，这个块标明需要它；没有时不标（标了就不再比对输出）。"""
    assert len(ALL_COMMANDS) >= 10
    blocks: dict[tuple[str, int], list[Command]] = {}
    for c in ALL_COMMANDS:
        assert c.line.startswith(("studygpt ", "python docs/")), f"{c.chapter}: 无法自动运行的命令 {c.line!r}"
        blocks.setdefault((c.chapter, c.block), []).append(c)
    for (chapter, _), block in blocks.items():
        reads_run = any(TRAINED_RUN in c.line for c in block)
        assert all(c.needs_run == reads_run for c in block), f"{chapter}: {block[0].line!r} 所在块的 {NEEDS_RUN} 标记不对"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """像一个刚检出的仓库的临时目录，外加一个极小的检查点 runs/quickstart（代替 3 分钟的快速上手）。"""
    work = tmp_path_factory.mktemp("docs")
    (work / "docs").mkdir()
    (work / "docs" / "scripts").symlink_to(ROOT / "docs" / "scripts")
    (work / "studygpt").symlink_to(ROOT / "studygpt")  # 命令里的数据路径 studygpt/corpus/…
    dialogues, _ = read_dialogues(builtin_conv_path())
    tokenizer = Tokenizer().build_vocab(t for d in dialogues for t in d)
    save_checkpoint(work / "runs" / "quickstart", tiny_model(tokenizer.vocab_size, n_layers=1, max_len=128), tokenizer)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 极小的模型用 1 个线程最快；和别的进程抢 CPU 时，多线程的小运算会慢十几倍
    yield work
    torch.set_num_threads(threads)


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: f"{c.chapter[:2]}:{c.line[:60]}")
def test_command_runs(command, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    argv = shlex.split(command.line)
    if argv[0] == "studygpt":
        assert cli_main(argv[1:]) == 0, capsys.readouterr().err
    else:
        monkeypatch.setattr(sys, "argv", argv[1:])
        monkeypatch.syspath_prepend(str(ROOT / "docs" / "scripts"))  # 像 `python 脚本` 一样，脚本所在目录可导入
        runpy.run_path(argv[1], run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{command.line!r} 没有输出"
    if not command.needs_run and command.first_output_line is not None:
        assert out.splitlines()[0] == command.first_output_line, "文档里贴的输出和真实输出不一样了：请重新运行并更新文档"
    if "inspect attention" in command.line:
        assert list((workdir / "runs" / "quickstart" / "attention").glob("attention_layer*.png"))


def test_course_scripts_write_pictures_outside_git_unless_asked(tmp_path, monkeypatch, capsys):
    """课程脚本默认把图写进 runs/course/（.gitignore 里有 runs/），--update-docs 才写课程配图。
    （没有中文字体时的那一行提示：tests/test_course_scripts_clean.py。）"""
    from matplotlib.figure import Figure

    scripts = ROOT / "docs" / "scripts"
    monkeypatch.syspath_prepend(str(scripts))
    import course_figures
    monkeypatch.chdir(tmp_path)
    fig = Figure()
    fig.subplots().set_title("title")
    assert course_figures.save_figure(fig, "a.png", argv=[]) == Path("runs/course/a.png")
    assert (tmp_path / "runs" / "course" / "a.png").is_file() and not (tmp_path / "docs").exists()
    assert course_figures.save_figure(fig, "a.png", argv=["--update-docs"]) == Path("docs/zh/img/a.png")
    assert "runs/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    capsys.readouterr()
    course_figures.save_figure(fig, "b.png", argv=[])
    assert capsys.readouterr().out.splitlines() == ["图 (figure): runs/course/b.png"]
    for script in scripts.glob("*.py"):  # 只有 course_figures 存图：别的脚本都经过它，不会直接写进仓库
        if script.name != "course_figures.py":
            source = script.read_text(encoding="utf-8")
            assert ".savefig(" not in source and 'Path("docs/zh/img")' not in source, script.name
