"""包的结构 (the package's layout)：数据单向流动，课程按章往上走——导入只能往下，不能绕圈。

每个房间 (room) 是 studygpt/ 下的一个子包或一个顶层文件。LAYERS 从下往上排：一个房间只能导入同层以内
或更低层的房间（函数里的延迟导入也算）。这个测试失败时，说明有一条导入往上走了，或者出现了导入圈。
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "studygpt"

# 从下往上 (bottom to top)：corpus → tokenizer → batches → model → training → generation → evaluation → posttrain
# → recipes → labs → inspection → serve / export / doctor（体检）/ course（课程进度）→ cli；compat 与 __init__ 是给用户的门面，在最上面。
LAYERS = [
    {"errors", "hardware", "plotting"},
    {"corpus"},
    {"tokenizer"},
    {"batches"},
    {"model"},
    {"training"},
    {"generation"},
    {"evaluation"},
    {"posttrain"},
    {"recipes"},
    {"labs"},
    {"inspection"},
    {"serve", "export", "doctor", "course"},
    {"cli"},
    {"compat"},
    {"__init__", "__main__"},
]
RANK = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """这个文件导入的 studygpt 模块（`from a.b import c` 里 c 是模块时算 a.b.c）。"""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "studygpt"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "studygpt":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def room(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan 强连通分量：多于一个模块的分量就是一个导入圈。"""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_room_has_a_layer():
    rooms = {room(m) for m in all_modules()}
    assert rooms - set(RANK) == set(), "新的子包或顶层文件要在 LAYERS 里排好位置"


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_no_import_runs_up_a_layer():
    upward = [f"{a} → {b}" for a, targets in import_graph().items() for b in targets
              if RANK[room(b)] > RANK[room(a)] or (RANK[room(b)] == RANK[room(a)] and room(a) != room(b))]
    assert upward == []


def test_package_code_imports_real_modules_not_a_package_face():
    """包里的代码导入真正的文件，不经过子包的 __init__（门面会把导入圈藏起来）。"""
    modules = all_modules()
    packages = {m for m, p in modules.items() if p.name == "__init__.py"}
    faces = [f"{a} → {b}" for a, targets in import_graph().items() for b in targets if b in packages]
    assert faces == []


@pytest.mark.parametrize("init", sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.glob("*/__init__.py")))
def test_each_subpackage_says_what_it_is(init):
    """每个子包的 __init__ 只有一段说明：哪一章、进来什么出去什么、主要的名字（三到六行）。"""
    tree = ast.parse((PACKAGE / init).read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc and 3 <= len(doc.strip().splitlines()) <= 7, init
    assert [n for n in tree.body if not isinstance(n, ast.Expr)] == [], f"{init} 应该只有说明文字，不导入任何东西"


def test_the_layout_test_catches_a_circle_and_an_upward_import():
    """这个测试自己也要能失败：人为加一条往上的边和一个圈。"""
    graph = {"studygpt.model.transformer": {"studygpt.training.trainer"}, "studygpt.training.trainer": set()}
    assert RANK[room("studygpt.training.trainer")] > RANK[room("studygpt.model.transformer")]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert cycles(graph) == []
