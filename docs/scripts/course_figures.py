"""课程脚本共用的画图规则 (shared by the course scripts)：图写到哪里，用什么中文字体。

- 默认写进 runs/course/（runs/ 在 .gitignore 里）：在仓库里跑课程脚本，`git status` 仍然是干净的；
- 加 `--update-docs` 才覆盖课程里的配图 docs/zh/img/（维护者更新课程时用；提交前看一眼图）；
- 画图之前调用 use_cjk_font（就是 studygpt.plotting.setup_cjk_font）：找不到中文字体时，图照样画（汉字是方框），
  打印一次与 `studygpt inspect attention` 相同的一行安装提示，而不是每个画不出的字各警告一次。
"""
from __future__ import annotations

import sys
from pathlib import Path

from studygpt.plotting import setup_cjk_font as use_cjk_font  # noqa: F401  课程脚本从这里导入

LOCAL_DIR = Path("runs/course")   # 默认：不进 git
DOCS_DIR = Path("docs/zh/img")    # --update-docs：课程配图
UPDATE_FLAG = "--update-docs"


def figure_dir(argv: list[str] | None = None) -> Path:
    """图写到哪里：命令行有 --update-docs 时是 docs/zh/img/，否则是 runs/course/。"""
    argv = sys.argv[1:] if argv is None else argv
    return DOCS_DIR if UPDATE_FLAG in argv else LOCAL_DIR


def save_figure(fig, name: str, note: str = "", argv: list[str] | None = None) -> Path:
    """存图并打印 `图 (figure): 路径`。返回图的路径。"""
    out = figure_dir(argv)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=100)
    print(f"图 (figure): {path}{note}")
    return path
