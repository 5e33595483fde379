"""一次训练运行读下来要在文件之间来回几次？(how often does a reader of one training run go back to a file?)

像读者一样走一遍 `studygpt train`：从 train_from_spec 开始，到 report.md 写完为止。每个 studygpt 函数在它
**第一次**被调用时读一遍（深度优先：先读它调用的新函数，读完回到它），已经读过的函数不再读。
路线 (route) 是读者所在的文件的序列：进入一个新函数的文件，读完再回到调用它的文件（"往回爬"）；
相邻的同一个文件合成一次"进入"。然后数：

    stops    一共进入文件几次
    returns  回到一个已经离开过的文件几次（stops − 文件数）
    most     进入次数最多的文件

同样的数也按"房间"（studygpt/ 下的子包或顶层文件）数一遍：在同一个子包里的文件之间走动不算离开。

第 26 号问题的验收数的是"进入" (entries)：读者为了读一段**还没读过**的代码，从一个文件走进另一个文件，算一次。
读的单位是函数，或者整个类（第一次碰到一个类——建它的实例、或调它的方法——就把整个类读完；dataclass
自动生成的 __init__ 也算碰到它的类）。回到调用者那里接着读不算进入。验收：每个文件最多进入 2 次，
必须反复经过的除外（EXEMPT：分词器的 encode/decode，训练、验证、生成都要用它）。

用法：python benchmarks/code_walk.py [--show]（--show 打印整条路线）。只用内置语料训练 2 步，几秒钟。
新旧两种布局都能量，所以搬家前后的数字可以并排比较。
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXEMPT = {"tokenizer/char.py"}  # 必须反复经过的文件（见上）
MOST_ENTRIES = 2


def load_entry():
    """新旧两种布局都能量（旧布局：studygpt/run.py；新布局：studygpt/recipes/train.py）。"""
    try:
        from studygpt.recipes.train import RunSpec, train_from_spec
    except ImportError:
        from studygpt.run import RunSpec, train_from_spec
    try:
        from studygpt.corpus.builtin import builtin_conv_path
    except ImportError:
        from studygpt.corpus import builtin_conv_path
    return RunSpec, train_from_spec, builtin_conv_path


def tiny_run(out: Path):
    """被走读的那次训练：内置语料、tiny 预设、2 步，每步都验证（验证、存 best/、报告都走一遍）。"""
    RunSpec, train_from_spec, builtin_conv_path = load_entry()
    spec = RunSpec(data=[str(builtin_conv_path())], out=str(out), preset="tiny", device="cpu",
                   train={"max_steps": 2, "batch_size": 2, "seq_len": 64, "check_memory": False, "eval_every": 1})
    return lambda: train_from_spec(spec, log=lambda *_: None, progress=False)


def traced(run, profile) -> None:
    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)


def package_dir() -> str:
    """真正被导入的 studygpt/ 在哪里（按文件名认出"我们的"代码）。"""
    import studygpt
    return str(Path(studygpt.__file__).resolve().parent)


def walk(out: Path) -> list[str]:
    """训练 2 步，按第一次调用的顺序返回函数所在的文件（相对 studygpt/）。"""
    package = package_dir()
    seen, files, stack = set(), [], []  # stack：(函数, 是否是第一次读到它)

    def profile(frame, event, arg):
        code = frame.f_code
        ours = code.co_filename.startswith(package) and not code.co_name.startswith("<")
        if event == "call":
            new = ours and code not in seen
            seen.add(code)
            stack.append((code, new))
            if new:
                files.append(code.co_filename)
        elif event == "return" and stack:
            _, was_new = stack.pop()
            reader = next((c for c, n in reversed(stack) if n), None)  # 读者回到最近一个正在读的函数
            if was_new and reader is not None:
                files.append(reader.co_filename)

    traced(tiny_run(out), profile)
    return [Path(f).relative_to(package).as_posix() for f in files]


def entries(out: Path) -> list[tuple[str, str, str, str]]:
    """训练 2 步，返回每一次"进入"：(从哪个文件, 哪个函数, 进哪个文件, 读什么)，文件相对 studygpt/。"""
    package = package_dir()
    read, found, stack = set(), [], []  # stack：每一层调用是我们的哪个文件的哪个函数（不是我们的为 None）

    def unit(frame) -> tuple[str, str] | None:
        """这一帧属于哪个"读的单位"：(文件, 类名或函数名)；不是 studygpt 的代码时 None。"""
        code = frame.f_code
        if code.co_filename.startswith(package) and not code.co_name.startswith("<"):
            outer = code.co_qualname.split(".<locals>")[0]
            return code.co_filename, outer.split(".")[0] if "." in outer else code.co_qualname
        this = frame.f_locals.get("self") if code.co_name == "__init__" else None  # dataclass 生成的 __init__
        cls = type(this) if this is not None else None
        if cls is not None and cls.__module__.startswith("studygpt"):
            source = sys.modules[cls.__module__].__file__
            return (source, cls.__qualname__) if source and source.startswith(package) else None
        return None

    def profile(frame, event, arg):
        if event == "call":
            here = unit(frame)
            caller = next((u for u in reversed(stack) if u is not None), None)
            stack.append(here)
            if here and here not in read:
                read.add(here)
                if caller and caller[0] != here[0]:
                    found.append((caller[0], caller[1], here[0], here[1]))
        elif event == "return" and stack:
            stack.pop()

    traced(tiny_run(out), profile)
    rel = lambda f: Path(f).relative_to(package).as_posix()  # noqa: E731
    return [(rel(a), who, rel(b), what) for a, who, b, what in found]


def room(path: str) -> str:
    """房间 (room)：studygpt/ 下的一个子包或一个顶层文件，如 training/trainer.py → training/。"""
    return path.split("/")[0] + "/" if "/" in path else path


def summarize(files: list[str]) -> dict:
    stops = [f for i, f in enumerate(files) if i == 0 or files[i - 1] != f]
    entered = Counter(stops)
    return {"stops": len(stops), "files": len(entered), "returns": len(stops) - len(entered),
            "most": entered.most_common(6), "route": stops}


def too_often(found: list[tuple[str, str, str, str]]) -> dict[str, list[str]]:
    """进入超过 MOST_ENTRIES 次的文件（EXEMPT 除外）→ 每次进入的"从哪里 → 读什么"。"""
    into = Counter(b for _, _, b, _ in found)
    return {f: [f"{a}:{who} → {what}" for a, who, b, what in found if b == f]
            for f, n in into.most_common() if n > MOST_ENTRIES and f not in EXEMPT}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--show", action="store_true", help="打印整条路线与每一次进入")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = walk(Path(tmp) / "run")
        found = entries(Path(tmp) / "run2")
    for title, route in (("房间 (rooms: subpackages and top-level files)", [room(f) for f in files]), ("文件 (files)", files)):
        result = summarize(route)
        print(f"{title}: stops {result['stops']} · visited {result['files']} · returns {result['returns']}")
        print("  most entered: " + ", ".join(f"{f} ×{n}" for f, n in result["most"]))
        if args.show:
            print("  " + " → ".join(result["route"]))
    into = Counter(b for _, _, b, _ in found)
    print(f"进入 (entries, 第 26 号问题的验收): {len(found)} 次进入 {len(into)} 个文件；最多的 "
          + ", ".join(f"{f} ×{n}" for f, n in into.most_common(6)))
    if args.show:
        for a, who, b, what in found:
            print(f"  {a}:{who} → {b}:{what}")
    bad = too_often(found)
    for f, how in bad.items():
        print(f"  超过 {MOST_ENTRIES} 次 (more than {MOST_ENTRIES}): {f} ×{len(how)}: " + "; ".join(how))
    print("每个文件最多进入 2 次（分词器除外）：" + ("是 (yes)" if not bad else f"否 (no)，{len(bad)} 个文件超过"))


if __name__ == "__main__":
    main()
