"""文档里的路径都存在 (every path the docs name exists)：README、README_en、docs/ 下全部 Markdown。

包的文件搬过家以后，最容易过时的就是文档里的链接和 `studygpt/...` 路径；这个测试把它们全部检查一遍。
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "README_en.md", *(ROOT / "docs").rglob("*.md"),
               *(ROOT / "studygpt").rglob("*.md"), *(ROOT / "benchmarks").rglob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PACKAGE_PATH = re.compile(r"(?<![\w.])studygpt/[\w./-]*")


def relative_links(text: str) -> list[str]:
    return [t.split("#")[0] for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def package_paths(text: str) -> list[str]:
    """正文里写出的 studygpt/... 路径（通配符 * 的例外：那是模式，不是文件）。"""
    return [p.rstrip(".") for p in PACKAGE_PATH.findall(text) if "*" not in p]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_exist(path):
    text = path.read_text(encoding="utf-8")
    missing = [t for t in relative_links(text) if t and not (path.parent / t).exists()]
    assert missing == [], f"{path.relative_to(ROOT)} 里的链接指向不存在的文件"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_named_package_paths_exist(path):
    text = path.read_text(encoding="utf-8")
    missing = sorted({p for p in package_paths(text) if not (ROOT / p).exists()})
    assert missing == [], f"{path.relative_to(ROOT)} 提到的这些路径不存在"


def test_the_checks_find_a_stale_path():
    """测试自己也要能失败：一个搬走了的旧路径和一个坏链接都能被找出来。"""
    text = "见 [`fit_prompt`](studygpt/generate.py) 与 `studygpt/model/transformer.py`。"
    assert package_paths(text) == ["studygpt/generate.py", "studygpt/model/transformer.py"]
    assert not (ROOT / "studygpt/generate.py").exists() and (ROOT / "studygpt/model/transformer.py").exists()
    assert relative_links(text) == ["studygpt/generate.py"]
