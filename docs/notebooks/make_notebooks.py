"""把每一章的 markdown 变成一个能逐格运行的 notebook (generate one Jupyter notebook per chapter)。

正文只有一份：docs/zh/NN_*.md。这个脚本把它切成格子 (cells)，写成 docs/notebooks/NN_*.ipynb（不带输出）：

    文字                   → markdown 格子（相对链接改成从 docs/notebooks/ 出发，图照常显示）
    ```sh 里的每条命令      → 一个 %%bash 格子：命令失败时格子报错，CI 能看见
    ```python 代码          → 一个 Python 格子
    pytest docs/exercises   → 一个 !pytest 格子（标签 exercise）：练习还没做完时测试失败是正常的，不算格子出错

笔记本要在 2 个 CPU 核上 3 分钟内跑完，所以和终端里有三处不同，都写在笔记本开头：
1. 产物都放在 runs/nb/ 下（代码里的 `runs/` 换成 `runs/nb/`），不碰你在终端里训练的 runs/quickstart 等；
2. 本章要用训练好的模型时，开头先用小设置训练一个（runs/nb/quickstart，300 步，约半分钟；已经有就跳过）；
3. 训练得久的命令换成小设置：写在正文里那段代码后面的注释里，GitHub 上看不见——

       ```sh
       studygpt quickstart
       ```
       <!-- notebook: studygpt quickstart --out runs/quickstart_small --max-steps 300 --no-chat -->

   `<!-- notebook: skip 原因 -->` 表示笔记本里不运行（只显示命令和原因）。要在终端里打字或一直运行的命令
   （chat、serve、torchrun、pip install、下载）不用写，自动不运行（NOT_IN_NOTEBOOK）。

用法：python docs/notebooks/make_notebooks.py          # 重写全部笔记本（改了正文之后）
      python docs/notebooks/make_notebooks.py --check  # 只检查笔记本和正文一致（tests/test_notebooks.py 也查）
"""
from __future__ import annotations

import argparse
import posixpath
import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ROOT / "docs" / "zh"
NOTEBOOKS = ROOT / "docs" / "notebooks"
QUICKSTART_STEPS = 300

# 自动不运行的命令：开头 → 原因
NOT_IN_NOTEBOOK = {
    "studygpt chat": "要在终端里一句句打字",
    "studygpt serve": "服务会一直运行到你按 Ctrl+C",
    "torchrun": "要几块 GPU",
    "pip install": "安装请在终端里做",
    "studygpt data download": "要联网下载",
}

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
DIRECTIVE = re.compile(r"[ \t]*\n?<!-- notebook:(.*?)-->\n?", re.S)  # match(text, pos) 从 pos 开始比
LINK = re.compile(r"(\]\(|src=\")([^)\"#:\s]+)")


def chapters() -> list[Path]:
    return sorted(CHAPTERS.glob("[0-9][0-9]_*.md"))


def notebook_path(chapter: Path) -> Path:
    return NOTEBOOKS / (chapter.stem + ".ipynb")


# ===== 1. 文字 (markdown) =====
def relink(text: str) -> str:
    """正文里的相对链接是从 docs/zh/ 出发的；笔记本在 docs/notebooks/，链接改成从这里出发。"""
    def fix(m: re.Match) -> str:
        return m.group(1) + posixpath.normpath(posixpath.join("../zh", m.group(2)))
    return LINK.sub(fix, text)


def markdown_cells(text: str) -> list:
    text = text.strip("\n")
    return [new_markdown_cell(relink(text))] if text.strip() else []


# ===== 2. 命令 (shell blocks) =====
def commands(block: str) -> list[str]:
    """一段 sh 代码 → 命令的列表：续行 (\\) 连在一起，命令前面的注释行跟着它，空行去掉。"""
    result, pending, current = [], [], []
    for line in block.splitlines():
        if not line.strip():
            continue
        if not current and line.lstrip().startswith("#"):
            pending.append(line)
            continue
        current.append(line)
        if not line.rstrip().endswith("\\"):
            result.append("\n".join(pending + current))
            pending, current = [], []
    if current or pending:
        result.append("\n".join(pending + current))
    return result


def in_notebook_paths(code: str) -> str:
    """笔记本的产物放在 runs/nb/ 下：`runs/x` → `runs/nb/x`。"""
    return re.sub(r"(?<![\w./-])runs/", "runs/nb/", code)


def first_line(command: str) -> str:
    return next(line for line in command.splitlines() if not line.lstrip().startswith("#")).strip()


def shell_cell(command: str, note: str = ""):
    """一条命令 → 一个格子。note：放在命令前面的注释（原样，不换路径）。"""
    if first_line(command).startswith("studygpt quickstart") and "--out" not in command:
        # 不给 --out 时写进 runs/quickstart：会盖掉学习者在终端里训练的模型
        raise SystemExit(f"笔记本里的 quickstart 要写 --out：{first_line(command)}")
    if first_line(command).startswith("pytest docs/exercises"):
        # 练习没做完时测试失败是正常的：用 ! 运行，失败不让格子报错
        return new_code_cell("# 练习的测试：没做完时失败是正常的 (failing tests = exercises still to do)\n!" + command,
                             metadata={"tags": ["exercise"]})
    return new_code_cell("%%bash\n" + note + in_notebook_paths(command))


def skipped_cell(language: str, block: str, reason: str):
    return new_markdown_cell(f"```{language}\n{block}```\n\n（笔记本里不运行 (not run in the notebook)：{reason}；"
                             "需要时在终端里、仓库根目录运行。）")


def code_cells(language: str, block: str, directive: str | None) -> list:
    if directive is not None and directive.startswith("skip"):
        return [skipped_cell(language, block, directive.removeprefix("skip").strip() or "太久")]
    if language == "python":
        code = block if directive is None else directive
        return [new_code_cell(in_notebook_paths(code.strip("\n")))]
    if language not in ("sh", "bash"):
        return [new_markdown_cell(f"```{language}\n{block}```")]  # 输出样例等：照原样显示
    if directive is not None:
        original = [" ".join(c.replace("\\\n", " ").split()) for c in commands(block)]
        note = "".join(f"# 正文 (in the chapter)：{c}\n" for c in original) + \
            "# ↓ 笔记本里改成这样（小设置、可以重跑）(as run in the notebook: small settings, safe to rerun)\n"
        return [shell_cell(c, note if i == 0 else "") for i, c in enumerate(commands(directive))]
    cells = []
    for command in commands(block):
        reason = next((why for start, why in NOT_IN_NOTEBOOK.items() if first_line(command).startswith(start)), None)
        cells.append(skipped_cell(language, command + "\n", reason) if reason else shell_cell(command))
    return cells


# ===== 3. 一章 → 一个笔记本 =====
def header(chapter: Path, title: str, needs_quickstart: bool) -> list:
    cells = [new_markdown_cell(
        f"{title}（笔记本 notebook）\n\n"
        f"由正文 [`docs/zh/{chapter.name}`](../zh/{chapter.name}) 生成（`python docs/notebooks/make_notebooks.py`），"
        "正文只有一份：想改文字请改正文。\n\n"
        "和在终端里读正文的三处不同 (three differences from the terminal)：\n"
        "1. 产物都放在 `runs/nb/` 下（命令里的 `runs/` 换成了 `runs/nb/`），不碰你在终端里训练的东西；\n"
        f"2. 要用训练好的模型时，下面先用小设置训练一个 `runs/nb/quickstart`（{QUICKSTART_STEPS} 步，约半分钟），"
        "所以数字和正文里的不同——完整的是终端里的 `studygpt quickstart`（3 分钟）；\n"
        "3. 训练得久的命令换成了小设置（个别命令加了 `--force`，好让格子能重跑），格子里的注释写着正文原来的命令。\n\n"
        "准备 (setup)：`pip install -e \".[course]\"`，然后 `jupyter lab docs/notebooks/`，从上往下逐格运行 (Shift+Enter)。"),
        new_code_cell("# 命令都在仓库根目录运行 (run from the repository root)\n"
                      "import os\nfrom pathlib import Path\n\n"
                      "root = Path.cwd()\n"
                      "while not (root / \"pyproject.toml\").exists() and root != root.parent:\n"
                      "    root = root.parent\n"
                      "os.chdir(root)\nprint(\"工作目录 (working directory):\", root)")]
    if needs_quickstart:
        cells.append(new_code_cell(
            "%%bash\n# 本章要用一个训练好的模型：没有就先用小设置训练一个（已经有就跳过）\n"
            "test -f runs/nb/quickstart/report.md || "
            f"studygpt quickstart --out runs/nb/quickstart --max-steps {QUICKSTART_STEPS} --no-chat --no-progress"))
    return cells


def build(chapter: Path):
    text = chapter.read_text(encoding="utf-8")
    title, _, body = text.partition("\n")
    cells, position = [], 0
    for fence in FENCE.finditer(body):
        cells += markdown_cells(body[position:fence.start()])
        position = fence.end()
        directive = DIRECTIVE.match(body, position)
        if directive:
            position = directive.end()
            if DIRECTIVE.match(body, position):
                raise SystemExit(f"{chapter.name}：一段代码后面只能有一个 <!-- notebook: … -->（多条命令写在同一个里，一行一条）")
        language, block = fence.group(1) or "text", fence.group(2)
        cells += code_cells(language, block, directive.group(1).strip() if directive else None)
    cells += markdown_cells(body[position:])
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    nb = new_notebook(cells=header(chapter, title, "runs/nb/quickstart" in code) + cells,
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{chapter.stem[:2]}-{i:03d}"  # 固定的 id：重新生成时文件不变
    return nb


def render(chapter: Path) -> str:
    return nbformat.writes(build(chapter)) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description="把 docs/zh/ 的每一章写成 docs/notebooks/ 里的一个笔记本")
    p.add_argument("--check", action="store_true", help="只检查，不写：笔记本和正文不一致时列出来、返回 1")
    args = p.parse_args()
    stale = []
    for chapter in chapters():
        path, text = notebook_path(chapter), render(chapter)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(("过期 (stale)：" if args.check else "写好 (written)：") + str(path.relative_to(ROOT)))
    if args.check and stale:
        print("请运行 python docs/notebooks/make_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
