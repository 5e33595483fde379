"""每个命令对付恶意参数 (every command against hostile arguments, issue #27 item 3)。

走遍 argparse 的每个子命令和它的每个选项（与 tests/test_cli_flags.py 的 walk 相同），给每个选项一组坏值：
零、负数、NaN、inf、极大（1e308、10**30）、类型不对 ("abc")、空字符串、非 UTF-8 字节、该是文件夹却是文件（和反过来）、
不存在、不可写、符号链接环、别种的目录（分词器目录、导出目录当训练目录）。每一例都必须：
退出码 2 · stderr 恰好一行、不含 Traceback · 20 秒内结束 · 写出的东西不超过几 KB。

哪些值算坏，按选项的意思定（KINDS）：个数 ≥ 1，比例在 (0, 1]，温度 ≥ 0，输入路径必须存在……
默认只跑便宜的一份（每个选项一种坏值、都在开始干活之前被拦下）；全部组合带 `slow` 标记：`pytest -m slow tests/test_cli_hostile.py`。
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import os
import signal
import sys
from pathlib import Path

import pytest

from studygpt.cli.parser import (
    COUNT,
    COUNT0,
    FRACTION,
    NONNEG,
    PORT,
    POSITIVE,
    SEED,
    build_parser,
    device,
    main,
)
from studygpt.model.checkpoint import save_checkpoint
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import DIALOGUES, tiny_model
from tests.test_cli_flags import walk

TIME_LIMIT_S = 20
MAX_WRITTEN_BYTES = 8_000  # 一条错误之外不该写出任何东西；几 KB 的余量给空目录之类
NON_UTF8 = os.fsdecode(b"\xff\xfe")  # 非 UTF-8 的文件名，在 Python 里是带代理字符的 str (surrogateescape)

# ===== 1. 每种值的坏法 (bad values by kind) =====
# 键是选项的「种类」(kind)，值是 (名字, 值) 的列表。值里的 {…} 在运行时换成准备好的路径（见 Places）。
NUMBER_CASES = {"zero": "0", "negative": "-1", "nan": "nan", "inf": "inf", "huge_float": "1e308",
                "huge_int": str(10**30), "text": "abc", "empty": "", "non_utf8": NON_UTF8, "fraction": "1.5"}
BAD = {
    "count": ["zero", "negative", "huge_int", "text", "empty", "non_utf8", "fraction"],  # 个数：≥ 1 的整数
    "count0": ["negative", "huge_int", "text", "empty", "non_utf8", "fraction"],  # 个数，0 也可以
    "seed": ["negative", "huge_int", "text", "empty", "non_utf8", "fraction"],
    "port": ["negative", "huge_int", "text", "empty", "non_utf8"],
    "positive": ["zero", "negative", "nan", "inf", "text", "empty", "non_utf8"],  # > 0 的有限数（1e308 也是合法的数）
    "nonneg": ["negative", "nan", "inf", "text", "empty", "non_utf8"],  # ≥ 0 的有限数
    "fraction": ["negative", "nan", "inf", "huge_float", "text", "empty", "non_utf8"],  # 比例：[0, 1] 里
    "top_p": ["zero", "negative", "nan", "inf", "huge_float", "text", "empty", "non_utf8"],  # (0, 1]
    "name": ["text", "empty", "non_utf8"],  # 从固定几个名字里选（预设、设备、任务……）
    "int": ["nan", "huge_int", "text", "empty", "fraction"],  # 任何整数都行（如 ffn_hidden，≤ 0 = 自动）
    "flag": ["text", "huge_int", "fraction"],  # train 的 true/false 设置
    "pair": ["text", "nan", "fraction"],  # betas：两个数
    "run": ["missing", "empty", "non_utf8", "file", "empty_dir", "tokenizer_dir", "export_dir", "loop"],
    "in_file": ["missing", "empty", "non_utf8", "dir", "loop"],
    "in_dir": ["missing", "empty", "non_utf8", "file", "loop"],  # 要读的目录（如 course 的 --exercises）
    "tokenizer": ["missing", "empty", "non_utf8", "file", "empty_dir", "loop", "export_dir"],
    "out_dir": ["empty", "file", "loop", "unwritable"],
    "out_file": ["empty", "dir", "loop", "unwritable"],
}

# ===== 2. 每个选项的种类 (kind of every option) =====
# (命令, 选项的 dest) → 种类；None = 任何值都合法（说明在后面）。没列出的选项按 argparse 的 type 推：int → count，float → positive。
KINDS = {
    ("train", "data"): "in_file", ("train", "val"): "in_file", ("train", "out"): "out_dir",
    ("train", "preset"): "name", ("train", "resume"): "run", ("train", "tokenizer"): "tokenizer",
    ("train", "device"): "name", ("train", "threads"): "count",
    ("quickstart", "out"): "out_dir", ("quickstart", "preset"): "name", ("quickstart", "seed"): "seed",
    ("quickstart", "tokenizer"): "tokenizer", ("quickstart", "device"): "name",
    ("data download", "name"): "name", ("data download", "out"): "out_dir", ("data download", "url"): None,
    ("eval", "runs"): "run", ("eval", "data"): "in_file", ("eval", "out"): "out_file", ("eval", "seeds"): "seed", ("eval", "train_data"): "in_file",
    ("serve", "run"): "run", ("serve", "host"): None, ("serve", "port"): "port", ("serve", "api_key"): None,
    ("export", "run"): "run", ("export", "to"): "name", ("export", "out"): "out_dir", ("export", "dtype"): "name",
    ("tokenizer train", "data"): "in_file", ("tokenizer train", "out"): "out_dir", ("tokenizer train", "type"): "name",
    ("finetune", "run"): "run", ("finetune", "data"): "in_file", ("finetune", "out"): "out_dir",
    ("finetune", "example"): "name", ("finetune", "seed"): "seed", ("finetune", "lora_dropout"): "fraction",
    ("inspect attention", "out"): "out_dir", ("inspect attention", "reply_tokens"): "count0",
    ("course", "exercises"): "in_dir", ("lab", "name"): "name",
    ("rl", "kl"): "nonneg", ("dpo", "sft_weight"): "nonneg", ("sft", "sloppy"): "fraction", ("dpo", "pairs"): "in_file",
}
COMMON_KINDS = {"run": "run", "text": None, "texts": None, "vocab": "tokenizer", "device": "name", "seed": "seed",
                "temperature": "nonneg", "top_p": "top_p", "repetition_penalty": "positive", "preset": "name",
                "task": "name", "out": "out_dir", "vocab_size": "count"}
# 任何值都合法的选项：用户输入的文字 (text/texts)、网址（由下载时的请求判断）、监听地址（由操作系统绑定时判断）、API 密钥。


# train 的额外设置 `--key value`（ModelConfig 与 TrainConfig 的字段，不在 argparse 里）：字段名 → 种类
CONFIG_KINDS = {"seed": "seed", "weight_decay": "nonneg", "warmup_ratio": "fraction", "min_lr_ratio": "fraction",
                "dropout": "fraction", "save_every": "count0", "eval_every": "count0", "early_stop_patience": "count0",
                "warmup_steps": "count0", "ffn_hidden": "int", "betas": "pair", "assistant_token_id": None}
# assistant_token_id 由程序按分词器填写，用户给的值会被覆盖；vocab_size 由数据决定，不能设。


def config_options():
    """train 的额外设置，当作 argparse 的选项来扫：(假的 Action, 种类)。"""
    from studygpt.model.transformer import ModelConfig
    from studygpt.training.optim import TrainConfig
    for cls in (ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            if f.name == "vocab_size":
                continue
            kind = CONFIG_KINDS.get(f.name, "flag" if "bool" in str(f.type) else
                                    "count" if "int" in str(f.type) else "positive")
            yield argparse.Action(["--" + f.name.replace("_", "-")], f.name), kind


def leaf_commands():
    """(命令名, 解析器)：只要真正执行的子命令（有 handler 的），不要 `data`、`inspect` 这样的分组。"""
    for path, parser in walk(build_parser()):
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if path and not groups:
            yield " ".join(path), parser


def swept_options(parser: argparse.ArgumentParser):
    """要扫的选项：除了 --help 与开关 (--progress/--no-progress 这类) 之外的全部，包括位置参数。"""
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse.BooleanOptionalAction, argparse._StoreTrueAction)):
            continue
        if action.choices is not None and not isinstance(action.choices, dict):
            yield action, "name"
            continue
        yield action, kind_of(parser.prog.removeprefix("studygpt ").strip(), action)


def kind_of(command: str, action: argparse.Action) -> str | None:
    if (command, action.dest) in KINDS:
        return KINDS[(command, action.dest)]
    if action.dest in COMMON_KINDS:
        return COMMON_KINDS[action.dest]
    return {COUNT: "count", COUNT0: "count0", SEED: "seed", PORT: "port", POSITIVE: "positive", NONNEG: "nonneg",
            FRACTION: "fraction", device: "name", int: "count", float: "positive"}.get(action.type)


# ===== 3. 准备好的地方 (places)：一个极小的训练目录、语料、分词器目录、导出目录、文件、空目录、链接环 =====
class Places:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data.conv"
        self.data.write_text("".join("E\n" + "".join(f"M {t}\n" for t in d) for d in DIALOGUES * 10), encoding="utf-8")
        tokenizer = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
        self.run = root / "run"  # 训练目录的样子：run/last/ 是检查点（比真的训练两步快几十秒）
        save_checkpoint(self.run / "last", tiny_model(tokenizer.vocab_size, n_layers=1, max_len=64), tokenizer)
        self.tokenizer_dir = root / "tok"
        assert main(["tokenizer", "train", "--data", str(self.data), "--type", "char", "--out", str(self.tokenizer_dir)]) == 0
        self.file = root / "a_file.txt"
        self.file.write_text("不是目录 (not a folder)\n", encoding="utf-8")
        self.empty_dir = root / "empty"
        self.empty_dir.mkdir()
        self.loop = root / "loop"
        os.symlink(root / "loop2", self.loop)
        os.symlink(self.loop, root / "loop2")

    @functools.cached_property
    def export_dir(self) -> Path:
        """导出的 Hugging Face 文件夹（要导入 transformers，约 6 秒：只在用到时做）。"""
        assert main(["export", str(self.run), "--to", "hf", str(self.root / "export")]) == 0
        return self.root / "export"

    def value(self, case: str, work: Path) -> str:
        """坏值的名字 → 命令行上的字符串。work 是这一例自己的空目录（量它写了多少）。"""
        if case in NUMBER_CASES:
            return NUMBER_CASES[case]
        if case == "unwritable":
            locked = work / "locked"
            locked.mkdir(mode=0o500)
            return str(locked / "out")
        return {"missing": str(work / "missing"), "file": str(self.file), "dir": str(self.empty_dir),
                "empty_dir": str(self.empty_dir), "tokenizer_dir": str(self.tokenizer_dir),
                "export_dir": "", "loop": str(self.loop)}[case] or str(self.export_dir)


def base_args(command: str, p: Places, work: Path) -> list[tuple[str, object]]:
    """每个命令一条合法、便宜的命令行：[(dest 或 --选项, 值)]；坏值换掉其中一项或加在最后。"""
    run, data, out = str(p.run), str(p.data), str(work / "out")
    steps = [("--max-steps", "1")]
    return {
        "train": [("--data", [data]), ("--out", out), ("--d-model", "32"), ("--n-layers", "1"), ("--n-head", "2"),
                  ("--batch-size", "2"), *steps, ("--no-progress", None)],
        "chat": [("run", run), ("--max-length", "2")],
        "generate": [("run", run), ("text", "你好"), ("--max-length", "2")],
        "tokenize": [("texts", ["你好"]), ("--vocab", run)],
        "inspect tokens": [("texts", ["你好"]), ("--vocab", run)],
        "quickstart": [("--out", out), *steps, ("--no-chat", None), ("--no-progress", None)],
        "data download": [("name", "xiaohuangji"), ("--out", out), ("--url", "file:///nonexistent/x.zip"),
                          ("--no-progress", None)],
        "eval": [("runs", [run]), ("--data", data), ("--out", str(work / "eval.json")), ("--seeds", ["0"]),
                 ("--max-length", "2")],
        "serve": [("run", run)],
        "inspect next": [("run", run), ("text", "你好"), ("--tokens", "1")],
        "inspect attention": [("run", run), ("text", "你好"), ("--out", out)],
        "inspect params": [("run", run)],
        "info": [("run", run)],
        "export": [("run", run), ("--to", "hf"), ("out", out)],
        "sft": [("run", run), ("--out", out), *steps, ("--problems", "20")],
        "rl": [("run", run), ("--out", out), *steps, ("--prompts", "2"), ("--group-size", "2")],
        "dpo": [("run", run), ("--out", out), *steps, ("--batch-size", "2")],
        "tokenizer train": [("--data", [data]), ("--type", "char"), ("--out", out)],
        "finetune": [("run", run), ("--data", [data]), ("--out", out), *steps, ("--no-progress", None)],
        "course": [("--chapter", "1")],  # 工作目录不是仓库根目录：合法的参数也只得到一行错误，不会去跑练习
        "lab": [("name", "no-mask"), ("--predict", "A"), ("--out", out), *steps, ("--no-progress", None)],
    }[command]


def argv_with(command: str, base: list[tuple[str, object]], action: argparse.Action, value: str) -> list[str]:
    """把 base 里 action 那一项换成 value（没有就加上），拼成 argv。"""
    key = action.option_strings[-1] if action.option_strings else action.dest
    keys = [k for k, _ in base]
    items = [(k, v) for k, v in base]
    new = [value] if action.nargs in ("+", "*") else value
    if key in keys:
        items[keys.index(key)] = (key, new)
    else:
        items.append((key, new))
    argv = command.split()
    for k, v in items:
        if k.startswith("--"):
            argv.append(k)
        if v is not None:
            argv += v if isinstance(v, list) else [v]
    return argv


# ===== 4. 跑一例 (run one case)：在本进程里调 main()，闹钟当看门狗 (watchdog) =====
class TookTooLong(Exception):
    pass


class WouldServe(Exception):
    """serve 的坏值没被拦下、真的要开始监听了。"""


def run_case(argv: list[str], work: Path, capsys, monkeypatch) -> tuple[int | str, str]:
    """返回 (退出码, stderr)；stdout 仍由 capsys 接住（与真的 stdout 一样，写不出的字符会出错）。超时、未捕获的异常都当成失败写进 stderr（带 Traceback 字样，让断言说清楚）。"""
    from studygpt.serve import app

    def refuse(*args, **kwargs):
        raise WouldServe("serve 开始监听了")

    monkeypatch.setattr(app, "run_server", refuse)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    stderr = io.StringIO()  # 真的 stderr 遇到非 UTF-8 的文件名会写成 \udcff（backslashreplace），不会出错；capsys 的会
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.chdir(work)  # 把空路径读成 "." 的毛病写出的东西也要量到

    def alarm(signum, frame):
        raise TookTooLong(f"超过 {TIME_LIMIT_S} 秒")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code if isinstance(exit_info.code, int) else 1
    except BaseException as err:  # noqa: BLE001 —— 任何漏网的异常都是要找的毛病
        code = f"Traceback: {type(err).__name__}: {err}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    capsys.readouterr()
    return code, stderr.getvalue()


def written_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(dirpath, f)).st_size for f in files)
    return total


def cases():
    """(命令, 选项, 种类, 坏值名字)：全部组合。"""
    for command, parser in leaf_commands():
        for action, kind in swept_options(parser):
            for case in BAD.get(kind, []) if kind else []:
                yield command, action, kind, case
    for action, kind in config_options():
        for case in BAD[kind] if kind else []:
            yield "train", action, kind, case


ALL_CASES = list(cases())
CHEAP = set(NUMBER_CASES) | {"missing"}  # 在解析参数或开始干活之前就该被拦下的坏值：默认每次都跑


def cheap_cases():
    """默认跑的一份：每个命令的每个选项，只取便宜的坏值（数字、文字、空、不存在的路径）；
    train 的额外设置要先读语料才校验（约 1 秒一例），每个只取 "abc" 一例。"""
    config = {action.dest for action, _ in config_options()}
    return [case for case in ALL_CASES if case[3] in CHEAP
            and (case[0] != "train" or case[1].option_strings[0][2:].replace("-", "_") not in config or case[3] == "text")]


def case_id(case) -> str:
    command, action, _, name = case
    return f"{command}:{action.option_strings[-1] if action.option_strings else action.dest}={name}"


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    return Places(tmp_path_factory.mktemp("hostile"))


def check_case(case, places, tmp_path, capsys, monkeypatch):
    command, action, _, name = case
    if name == "unwritable" and os.geteuid() == 0:
        pytest.skip("以 root 运行：chmod 0o500 拦不住 root 写入，这一例测不出来 (running as root)")
    work = tmp_path / "work"
    work.mkdir()
    argv = argv_with(command, base_args(command, places, work), action, places.value(name, work))
    before = written_bytes(places.root)  # 在 places.value 之后量：导出目录是用到时才建的
    code, err = run_case(argv, work, capsys, monkeypatch)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, f"{argv}\n退出码 {code}\nstderr:\n{err}"
    assert written_bytes(work) + written_bytes(places.root) - before <= MAX_WRITTEN_BYTES, argv


def test_every_option_of_every_command_is_classified():
    """新加的选项必须说清它的坏值是什么（或者为什么任何值都合法）。"""
    free = {"text", "texts", "url", "host", "api_key"}
    for command, parser in leaf_commands():
        for action, kind in swept_options(parser):
            assert kind is not None or action.dest in free, f"{command} {action.dest}：请在 KINDS 里给它一个种类"


@pytest.mark.parametrize("case", cheap_cases(), ids=case_id)
def test_cheap_hostile_value_is_one_clear_line(case, places, tmp_path, capsys, monkeypatch):
    check_case(case, places, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_every_hostile_value_is_one_clear_line(case, places, tmp_path, capsys, monkeypatch):
    check_case(case, places, tmp_path, capsys, monkeypatch)
