"""一次训练运行读下来要在文件之间来回几次？(how often does a reader of one training run go back to a file?)

像读者一样走一遍 `studygpt train`：从 train_from_spec 开始，到 report.md 写完为止。每个 studygpt 函数在它
**第一次**被调用时读一遍（深度优先：先读它调用的新函数，读完回到它），已经读过的函数不再读。
路线 (route) 是读者所在的文件的序列：进入一个新函数的文件，读完再回到调用它的文件（"往回爬"）；
相邻的同一个文件合成一次"进入"。然后数：

    stops    一共进入文件几次
    returns  回到一个已经离开过的文件几次（stops − 文件数）
    most     进入次数最多的文件

同样的数也按"房间"（studygpt/ 下的子包或顶层文件）数一遍：在同一个子包里的文件之间走动不算离开。

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


def walk(out: Path) -> list[str]:
    """训练 2 步，按第一次调用的顺序返回函数所在的文件（相对 studygpt/）。"""
    RunSpec, train_from_spec, builtin_conv_path = load_entry()
    package = str(ROOT / "studygpt")
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

    spec = RunSpec(data=[str(builtin_conv_path())], out=str(out), preset="tiny", device="cpu",
                   train={"max_steps": 2, "batch_size": 2, "seq_len": 64, "check_memory": False, "eval_every": 1})
    sys.setprofile(profile)
    try:
        train_from_spec(spec, log=lambda *_: None, progress=False)
    finally:
        sys.setprofile(None)
    return [Path(f).relative_to(package).as_posix() for f in files]


def room(path: str) -> str:
    """房间 (room)：studygpt/ 下的一个子包或一个顶层文件，如 training/trainer.py → training/。"""
    return path.split("/")[0] + "/" if "/" in path else path


def summarize(files: list[str]) -> dict:
    stops = [f for i, f in enumerate(files) if i == 0 or files[i - 1] != f]
    entered = Counter(stops)
    return {"stops": len(stops), "files": len(entered), "returns": len(stops) - len(entered),
            "most": entered.most_common(6), "route": stops}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--show", action="store_true", help="打印整条路线")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = walk(Path(tmp) / "run")
    for title, route in (("房间 (rooms: subpackages and top-level files)", [room(f) for f in files]), ("文件 (files)", files)):
        result = summarize(route)
        print(f"{title}: stops {result['stops']} · visited {result['files']} · returns {result['returns']}")
        print("  most entered: " + ", ".join(f"{f} ×{n}" for f, n in result["most"]))
        if args.show:
            print("  " + " → ".join(result["route"]))


if __name__ == "__main__":
    main()
