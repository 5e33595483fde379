"""命令行 `studygpt`（也可以 `python -m studygpt`）。每个子命令只解析参数，然后调用库里的函数。

    studygpt train --data FILE.conv [--val FILE] --out runs/NAME [--preset tiny|small|study|auto] [--key value …]
    studygpt train --resume runs/NAME
    studygpt chat runs/NAME            交互式多轮聊天（也能从管道读输入）
    studygpt generate runs/NAME "你好"  生成一条回答
    studygpt inspect tokens|next|attention|params …   看看里面：词元与掩码、下一个词元的概率、注意力图、参数与 FLOPs
    studygpt tokenize "你好" "你好！"   = inspect tokens（别名）
    studygpt info [runs/NAME | --preset NAME]   = inspect params（别名）
    studygpt eval runs/A [runs/B] --data FILE   成绩单：loss、bpc、回答的多样性与重复；两个时并排比较
                                   （加 --references：与参考回答比 BLEU、Dist、字符 F1，并与两个基线比）
    studygpt serve runs/NAME [--port 8000]      OpenAI 兼容的 API + 网页聊天界面 http://127.0.0.1:8000/
    studygpt export runs/NAME --to hf|gguf OUT  导出到 transformers 文件夹或 GGUF 文件（llama.cpp、Ollama）
    studygpt sft|rl|dpo runs/NAME --out runs/NEW   后训练：任务上的监督微调、强化学习 (GRPO)、偏好微调 (DPO)
    studygpt tokenizer train --data FILE --type bpe --vocab-size 8000 --out DIR   训练分词器（字符级或字节级 BPE）
    studygpt finetune runs/NAME --data new.conv --out runs/NAME2 [--merge]    LoRA 微调（--example persona 是内置例子）
    studygpt doctor                    体检：Python、torch、CPU 与精度、内存、磁盘、中文字体……能不能跑快速上手
    studygpt course [--chapter 15]    课程进度：列出各章，运行每章练习的测试，每个练习打 ✓ / ✗（在仓库根目录运行）

用户输入的问题（文件不存在、设置不对……）只打印一行错误并以状态 2 退出，不打印 traceback。

每个选项只有一种写法：单词之间用连字符 (`--max-steps`、`--batch-size`)，同一个意思在每个子命令里同名
（步数上限都是 --max-steps，时间预算都是 --max-minutes）。旧写法（`--max-steps`、sft/rl/dpo 的 `--steps`、
quickstart/finetune 的 `--minutes`）照样能用，只是不出现在 --help 里：见 canonical_flags。
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import sys
from pathlib import Path

from studygpt.cli import commands
from studygpt.errors import StudyGPTError
from studygpt.evaluation.metrics import EVAL_SEEDS, EVAL_SETTINGS
from studygpt.generation.generate import GenerationSettings
from studygpt.model.transformer import ModelConfig
from studygpt.recipes.presets import PRESETS
from studygpt.training.optim import TrainConfig
from studygpt.training.progress import LINE_EVERY_S

# 旧写法 → 新写法（隐藏的别名）：(子命令, 旧选项) → 新选项。下划线写法不用列在这里，canonical_flags 统一换成连字符。
OLD_NAMES = {**{(command, "--steps"): "--max-steps" for command in ("sft", "rl", "dpo")},
             **{(command, "--minutes"): "--max-minutes" for command in ("quickstart", "finetune")},
             ("inspect", "--steps"): "--tokens"}


def canonical_flags(argv: list[str]) -> list[str]:
    """把旧写法换成 --help 里的那一种：`--max-steps 5` → `--max-steps 5`，`dpo … --steps 3` → `--max-steps 3`。

    只改以 `--` 开头的选项名（`=` 后面的值不动）；单独的 `--` 之后的参数原样保留。
    """
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    out = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            name = "--" + name[2:].replace("_", "-")
            out[i] = OLD_NAMES.get((command, name), name) + eq + value
    return out


class Parser(argparse.ArgumentParser):
    """argparse 的解析器，只改一处：参数错了只打印一行（不打印整段 usage），退出码 2，与 main 里的其他错误一样。"""

    def error(self, message: str):
        self.exit(2, f"错误 (error): {self.prog} 的参数不对 (invalid argument)：{message}；用法见 `{self.prog} --help`。\n")


def number(cast: type, low: float, high: float | None = None, *, above: bool = False):
    """argparse 的 type：把文字读成 int 或 float，并要求 low ≤ 值 ≤ high（above=True 时要求 > low）。

    拦下 0 步、负的批大小、nan / inf 的温度、10**30 这样的种子……在开始干活之前，而不是训练到一半时报 traceback。
    """
    bound = f"{'>' if above else '≥'} {low}" + (f" 且 ≤ {high}" if high is not None else "")
    what = "整数 (integer)" if cast is int else "有限的数 (finite number)"

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} 不是{what}，请用 {bound} 的{what}") from None
        if not math.isfinite(value) or value < low or (above and value == low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} 超出范围 (out of range)，请用 {bound} 的{what}")
        return value

    parse.__name__ = "整数" if cast is int else "数"  # argparse 在出错信息里用这个名字
    return parse


INT_MAX = 2**31 - 1  # 个数的上限：再大的步数、批大小、词表都不是一台机器做得到的
COUNT = number(int, 1, INT_MAX)  # 步数、批大小、词元数……
COUNT0 = number(int, 0, INT_MAX)  # 同上，但 0 也可以（如 --reply-tokens 0）
SEED = number(int, 0, 2**32 - 1)  # 随机种子：numpy 与 PyTorch 都收的范围
PORT = number(int, 0, 65535)
POSITIVE = number(float, 0, above=True)  # 学习率、时间预算、β……
NONNEG = number(float, 0)  # 温度、KL 权重……（0 有意思）
FRACTION = number(float, 0, 1)  # 比例


def path(text: str) -> str:
    """argparse 的 type：文件或目录的路径。空字符串会被 Path 读成当前目录 "."——在那里读训练目录或写输出都不是用户的本意。"""
    if not text.strip():
        raise argparse.ArgumentTypeError("路径是空的 (empty path)，请给一个文件或目录")
    return text


def output(folder: bool | None):
    """argparse 的 type：要写出的目录 (folder=True)、文件 (False) 或两者皆可 (None，如 export 的 OUT)。写之前先看路径本身：已有的同名文件/目录种类不对、
    符号链接指向不存在的地方（或绕成环）、上一级其实是个文件——这些都在开始训练之前说清，而不是训练完保存时报 traceback。"""
    want, other = {True: ("目录 (folder)", "文件 (file)"), False: ("文件 (file)", "目录 (folder)"), None: ("路径", "")}[folder]

    def parse(text: str) -> str:
        target = Path(path(text))
        if target.is_symlink() and not target.exists():
            raise argparse.ArgumentTypeError(f"{text!r} 是断开或绕成环的符号链接 (broken or looping symlink)，请换一个输出{want}")
        if folder is not None and target.exists() and target.is_dir() != folder:
            raise argparse.ArgumentTypeError(f"{text!r} 已经是一个{other}，这里要的是{want}；请换一个名字")
        parent = next((p for p in target.absolute().parents if p.exists() or p.is_symlink()), None)
        if parent is not None and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} 的上一级 {str(parent)!r} 不是目录 (not a folder)；请换一个输出{want}")
        return text

    parse.__name__ = "输出路径"
    return parse


OUT_DIR, OUT_FILE, OUT_ANY = output(folder=True), output(folder=False), output(folder=None)


def parse_overrides(extra: list[str]) -> dict:
    """把 `--lr 1e-3 --n-layers 6 --compile true` 变成 {"lr": 0.001, "n_layers": 6, "compile": True}。"""
    out, i = {}, 0
    while i < len(extra):
        key = extra[i]
        if not key.startswith("--") or i + 1 >= len(extra):
            raise StudyGPTError(f"无法理解参数 {key!r}：额外设置要写成成对的 `--key value`。")
        value = extra[i + 1]
        lowered = value.lower()
        if lowered in ("true", "false", "none"):
            out[key[2:].replace("-", "_")] = {"true": True, "false": False, "none": None}[lowered]
        else:
            try:
                out[key[2:].replace("-", "_")] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                out[key[2:].replace("-", "_")] = value
        i += 2
    return out


def device(text: str) -> str:
    """argparse 的 type：cpu、cuda、cuda:0、mps……（auto = 自动选）。torch 不认识的名字在这里就拦下。"""
    import torch
    try:
        if text != "auto":
            torch.device(text)
    except RuntimeError:  # torch 的出错信息列出二十种设备类型；学习者要的只是这几种
        raise argparse.ArgumentTypeError(f"不认识的设备 (device) {text!r}，请用 cpu、cuda（或 cuda:0）、mps，或不给让程序自动选") from None
    return text


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device, default=None, help="cpu / cuda / mps，默认自动选择（有 GPU 就用）")


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help=f"显示训练进度：终端里是一条进度条；输出不是终端（管道、文件、CI 日志、notebook）时"
                   f"每 {LINE_EVERY_S:g} 秒一行普通文字，没有回车 (\\r)。--no-progress 两样都不显示，验证行等日志照常")


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=COUNT, default=None,
                   help="CPU 上用几个线程；默认每个核一个（别的程序占着 CPU 时，训练开始前会实测并提示更快的线程数）")


def add_sampling_args(p: argparse.ArgumentParser, defaults: GenerationSettings) -> None:
    """采样与回答长度的参数，chat / generate / eval 共用；默认值取自 defaults（eval 的默认与聊天不同）。"""
    s = defaults.sampling
    p.add_argument("--temperature", type=NONNEG, default=s.temperature, help="温度，0 为贪心 (greedy)；默认 %(default)s")
    p.add_argument("--top-k", type=COUNT, default=s.top_k, help="只在概率最高的 k 个里抽样；默认 %(default)s")
    p.add_argument("--top-p", type=number(float, 0, 1, above=True), default=s.top_p, help="只在累计概率达到 p 的最小集合里抽样；默认 %(default)s")
    p.add_argument("--repetition-penalty", type=POSITIVE, default=s.repetition_penalty, help="> 1 时减少重复；默认 %(default)s")
    p.add_argument("--max-length", type=COUNT, default=defaults.max_length, help="回答最多多少个词元；默认 %(default)s")


def add_chat_args(p: argparse.ArgumentParser) -> None:
    """chat 与 generate：采样参数 + 种子 + 显示思考 + 设备 + 编译。"""
    add_sampling_args(p, GenerationSettings())
    p.add_argument("--seed", type=SEED, default=None, help="固定随机种子，结果可复现")
    p.add_argument("--show-think", action=argparse.BooleanOptionalAction, default=False,
                   help="也显示模型的草稿 (<think>) 和工具调用与结果（第 16、17 章的模型）；默认只显示回答。聊天里 /think 切换")
    add_device_arg(p)
    add_compile_arg(p)


def add_compile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="编译逐词解码 (torch.compile，见 generation/fast_decode.py)：开始前要编译十几秒到一分钟，之后生成更快；需要 C++ 编译器")


def settings_table() -> str:
    """`studygpt train --help` 末尾的设置表：ModelConfig 与 TrainConfig 的每个字段和默认值，直接从 dataclass 生成，
    所以配置里新加的字段自动出现在这里。"""
    from studygpt.recipes.presets import DEFAULT_MAX_VOCAB_SIZE

    def default(f: dataclasses.Field):
        return f.default_factory() if f.default is dataclasses.MISSING else f.default

    lines = ["全部设置 (all settings)：都可以写成 `--key value` 覆盖。这里是配置类的默认值；--preset 先改其中几项（见 recipes/presets.py）。"]
    for title, cls, skip in (("模型设置 (ModelConfig)", ModelConfig, {"vocab_size"}), ("训练设置 (TrainConfig)", TrainConfig, set())):
        lines.append(f"{title}:")
        lines += [f"  --{flag(f.name):<22} 默认 {default(f)}" for f in dataclasses.fields(cls) if f.name not in skip]
    lines += ["词表 (vocabulary):", f"  --{'max-vocab-size':<22} 默认 {DEFAULT_MAX_VOCAB_SIZE}（vocab_size 由数据与它决定，不能直接设）"]
    return "\n".join(lines)


def flag(field_name: str) -> str:
    """配置类的字段名 → 命令行写法：max_steps → max-steps。"""
    return field_name.replace("_", "-")


def add_command(sub, name: str, handler: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """加一个子命令；handler 是 cli/commands.py 里 cmd_<handler> 的名字（默认与命令同名），别名与原命令共用同一个。"""
    p = sub.add_parser(name, **kwargs)
    p.set_defaults(handler=handler or name)
    return p


def add_tokens_command(sub, name: str, help: str) -> None:
    """`inspect tokens` 与它的别名 `tokenize`。"""
    p = add_command(sub, name, "tokens", help=help, description="把文字变成词元与编号；给多段文字时当作对话"
                    "（用户、助手交替），并标出哪些词元会被学习。")
    p.add_argument("texts", nargs="+", help="一段文字，或依次的对话轮次")
    p.add_argument("--vocab", type=path, default=None, help="vocab.txt 或训练目录；不给时用这些文字现建一个词表")
    p.add_argument("--show-mask", action=argparse.BooleanOptionalAction, default=True, help="标出被学习的词元")


def add_params_command(sub, name: str, help: str) -> None:
    """`inspect params` 与它的别名 `info`。"""
    p = add_command(sub, name, "params", help=help, description="参数量与一个训练步（batch_size × seq_len × "
                    "grad_accum_steps 个词元）的浮点运算量，按组件列出，附公式。")
    p.add_argument("run", type=path, nargs="?", default=None, help="训练目录或检查点；不给时按 --preset")
    p.add_argument("--preset", default="study", choices=list(PRESETS))
    p.add_argument("--vocab-size", type=COUNT, default=10000, help="按预设时的词表大小")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="studygpt", description="学习GPT (StudyGPT)：从零训练并使用一个中文对话模型。")
    sub = parser.add_subparsers(dest="command", required=True)

    p = add_command(sub, "train", help="训练模型 (train)", epilog=settings_table(),
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    description="训练一个对话模型。额外的 `--key value` 覆盖预设里的模型或训练设置，"
                    "例如 --lr 1e-3 --n-layers 6 --max-steps 500 --max-minutes 10；全部设置列在最后。")
    p.add_argument("--data", nargs="+", type=path, help="训练语料：.conv / .jsonl / .tsv，可以多个")
    p.add_argument("--val", type=path, default=None, help="验证语料；不给时从训练语料留出 2%%")
    p.add_argument("--out", type=OUT_DIR, default=None, help="输出目录，如 runs/mymodel")
    p.add_argument("--preset", default="tiny", choices=list(PRESETS), help="tiny | small | study（512/8/4/256 的结构）| auto（按 --max-minutes 的预算在这台机器上实测后定大小）")
    p.add_argument("--resume", default=None, type=path, metavar="RUN_DIR", help="从 RUN_DIR/last 接着训练")
    add_tokenizer_arg(p)
    add_device_arg(p)
    add_threads_arg(p)
    add_progress_arg(p)

    p = add_command(sub, "chat", help="交互式聊天 (chat)", description="多轮聊天。命令：/reset 清空历史，/help 帮助，"
                    "/set temperature 0.9 修改采样设置，/think 显示或隐藏草稿与工具调用；exit / quit / bye 退出。"
                    "也可以从管道读入。会调用计算器的模型（sft --format tool）由程序执行它的调用。")
    p.add_argument("run", type=path, help="训练输出目录或检查点文件夹")
    add_chat_args(p)

    p = add_command(sub, "generate", help="对一句话生成回答", description="对一句用户输入生成一条回答。"
                    "会调用计算器的模型照样调用（程序执行）；默认只打印回答，--show-think 时先打印草稿和调用。")
    p.add_argument("run", type=path, help="训练输出目录或检查点文件夹")
    p.add_argument("text", help="用户输入")
    add_chat_args(p)

    add_tokens_command(sub, "tokenize", help="看分词与损失掩码（同 `inspect tokens`）")

    p = add_command(sub, "quickstart", help="快速上手：几分钟训练出一个能聊天的模型",
                    description="读内置语料 → 建词表 → 建模型 → 训练（默认 3 分钟）→ 报告 → 聊天。")
    p.add_argument("--max-minutes", type=POSITIVE, default=3.0, help="训练时间预算（分钟），默认 3")
    p.add_argument("--preset", default="tiny", choices=list(PRESETS), help="tiny（默认，CPU 友好）| small | study")
    p.add_argument("--out", type=OUT_DIR, default="runs/quickstart", help="输出目录")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--max-steps", type=COUNT, default=None, help="最多训练多少步（用于快速试跑）")
    add_tokenizer_arg(p)
    add_device_arg(p)
    add_threads_arg(p)
    p.add_argument("--chat", action=argparse.BooleanOptionalAction, default=True, help="训练完在终端里开始聊天")
    add_progress_arg(p)

    add_command(sub, "doctor", help="体检：这台机器能不能跑快速上手，缺什么、怎么修",
                description="逐项检查 Python 与 torch、必需的包与可选组件、CPU 指令集与训练会选的精度、线程、可用内存、"
                "runs/ 所在的磁盘、中文字体、浏览器测试和 GPU；每项一行 ✓ / ⚠ / ✗，有问题的给一行修法。"
                "有 ✗（快速上手跑不起来）时退出码 1，只有 ⚠ 时 0。")

    p = add_command(sub, "data", help="下载真实语料 (download corpora)", description="语料工具。")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    d = data_sub.add_parser("download", help="下载并解压语料，如 xiaohuangji",
                            description="下载（可断点续传）、校验并解压一个公开语料，然后打印训练命令。")
    d.add_argument("name", help="语料名：xiaohuangji")
    d.add_argument("--out", type=OUT_DIR, default="data", help="保存目录，默认 data/")
    d.add_argument("--url", default=None, help="覆盖下载网址（如镜像）")
    d.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)

    p = add_command(sub, "eval", help="成绩单：loss、bpc、回答的多样性与重复",
                    description="在数据上算 loss / 困惑度 / 每字符比特数 (bpc) / <unk> 比例，再对 30 个固定提示"
                    "用固定种子生成回答，算回答长度、distinct-1/2、重复率、自己停下的比例。给两个 RUN 时并排比较。"
                    "加 --references 时还与参考回答比：BLEU-2/4、Dist-1/2、字符 F1（算法照 CDial-GPT）及两个基线。")
    p.add_argument("runs", type=path, nargs="+", metavar="RUN", help="训练目录或检查点文件夹；给两个时多一列差值 Δ")
    p.add_argument("--data", required=True, type=path, help="评估语料：.conv / .jsonl / .tsv")
    p.add_argument("--out", type=OUT_FILE, default=None, help="结果 JSON；默认每个 RUN 写自己的 RUN/eval.json，"
                   "给了 --out 则只写这一个文件（多个 RUN 时为 {\"runs\": {RUN: 结果}}）")
    p.add_argument("--seeds", type=SEED, nargs="+", default=list(EVAL_SEEDS), help="生成用的随机种子，默认 0 1 2")
    add_sampling_args(p, EVAL_SETTINGS)
    p.add_argument("--batch-size", type=COUNT, default=8, help="算 loss 时每批几行")
    p.add_argument("--references", action=argparse.BooleanOptionalAction, default=False,
                   help="把 --data 的每段对话拆成 (上下文, 参考回答 = 最后一句助手的话)，模型照 CDial-GPT 的设置"
                   "（p=0.9、temperature 0.7、第一个 --seeds）回答，算 BLEU-2/4、Dist-1/2、字符 F1，"
                   "并与两个基线（训练语料里最常见的回答、检索最像的训练上下文的回答）并排")
    p.add_argument("--train-data", nargs="+", type=path, default=None, metavar="FILE",
                   help="--references 的基线用的训练语料；默认读 RUN 训练时用的文件（与训练时一样留出验证集）")
    add_device_arg(p)

    p = add_command(sub, "serve", help="API 与网页聊天界面 (serve)",
                    description="启动一个服务器：OpenAI 兼容的 API（/v1/chat/completions、/v1/models）和网页聊天界面 (/)。"
                    "默认只监听本机 127.0.0.1。")
    p.add_argument("run", type=path, help="训练输出目录或检查点文件夹")
    p.add_argument("--host", default="127.0.0.1", help="监听地址；0.0.0.0 让同一网络的其他机器也能连（请同时设 --api-key）")
    p.add_argument("--port", type=PORT, default=8000, help="端口")
    p.add_argument("--api-key", default=None, help="设置后 /v1/* 需要 `Authorization: Bearer KEY`，否则返回 401")
    p.add_argument("--max-tokens-cap", type=COUNT, default=256, help="每个回答最多多少个词元（请求的 max_tokens 不能超过它）")
    p.add_argument("--max-batch", type=COUNT, default=16, help="最多几个请求一起解码（连续批处理）；1 = 一个接一个")
    add_device_arg(p)
    add_compile_arg(p)

    p = sub.add_parser("inspect", help="看看里面：词元、下一个词元、注意力、参数与 FLOPs",
                       description="学习用的检查工具 (look inside)，每个也是 studygpt/inspection/ 里的一个函数。")
    inspect_sub = p.add_subparsers(dest="inspect_command", required=True)
    add_tokens_command(inspect_sub, "tokens", help="词元、编号、<unk>，对话时标出被学习的词元（别名 `studygpt tokenize`）")
    i = add_command(inspect_sub, "next", help="下一个词元的前 k 名概率，及采样设置怎样改变它",
                    description="逐步贪心写几个词元，每步列出概率最高的候选；最后一步的分布在"
                    "温度 0.5/1/1.5、top_k=5、top_p=0.9、重复惩罚 1.3 下各是什么样。")
    i.add_argument("run", type=path, help="训练目录或检查点文件夹")
    i.add_argument("text", help="用户输入")
    i.add_argument("--tokens", type=COUNT, default=3, help="贪心往下写几个词元，默认 3")
    i.add_argument("--top", type=COUNT, default=10, help="每步列出前几名，默认 10")
    i = add_command(inspect_sub, "attention", help="每层每个头的注意力热力图 (PNG)",
                    description="用手写注意力路径跑一遍提示，把每层的注意力权重画成 PNG，两轴都是词元。")
    i.add_argument("run", type=path, help="训练目录或检查点文件夹")
    i.add_argument("text", help="用户输入")
    i.add_argument("--out", type=OUT_DIR, default=None, help="图片目录，默认 RUN/attention")
    i.add_argument("--reply-tokens", type=COUNT0, default=0, help="先贪心写出这么多个回答词元，一起画进图里")
    add_params_command(inspect_sub, "params", help="参数与一个训练步的 FLOPs 按组件分布（别名 `studygpt info`）")

    add_params_command(sub, "info", help="参数按组件的分布（同 `inspect params`）")

    p = add_command(sub, "export", help="导出到 Hugging Face 或 GGUF (llama.cpp / Ollama)",
                    description="把模型带出去：--to hf 写一个 transformers 能加载的文件夹，--to gguf 写一个 llama.cpp / "
                    "Ollama 能加载的 .gguf 文件。需要 pip install -e \".[export]\"。")
    p.add_argument("run", type=path, help="训练目录（默认用 best/）或检查点文件夹")
    p.add_argument("--to", required=True, help="hf | gguf")
    p.add_argument("out", type=OUT_ANY, help="输出：hf 是文件夹，gguf 是 .gguf 文件")
    p.add_argument("--dtype", default=None, help="gguf 的数据类型：f32（默认）| f16 | q8_0")
    p.add_argument("--force", action=argparse.BooleanOptionalAction, default=False, help="输出已存在时覆盖它")

    add_posttrain_commands(sub)  # sft / rl / dpo（训练方案在 recipes/posttrain.py）

    add_lab_commands(sub)
    add_break_it_command(sub)

    p = add_command(sub, "course", help="课程进度：各章练习的 ✓ / ✗",
                    description="列出课程的各章（docs/zh/），运行每章练习的测试（docs/exercises/test_chNN.py），"
                    "给每个练习打 ✓（通过）/ ✗（没通过）/ …（测试先卡在了同一章别的练习上），每章一行小结——"
                    "老师或学习小组看的一页。测试怎样记到练习上，见 studygpt/course.py 开头。在仓库根目录运行。")
    p.add_argument("--chapter", type=COUNT, default=None, help="只看这一章，如 --chapter 15")
    p.add_argument("--exercises", type=path, default=None, metavar="DIR",
                   help="练习目录，默认 docs/exercises（也可以是同学交来的一份副本）")
    return parser


def add_tokenizer_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", type=path, default=None, metavar="DIR",
                   help="用现成的分词器（`studygpt tokenizer train` 的输出目录）；不给时按语料建字符级词表")


def add_lab_commands(sub) -> None:
    """`tokenizer train`（第 12 章）与 `finetune`（LoRA，第 13 章）。"""
    p = add_command(sub, "tokenizer", help="分词器实验室：训练字符级或字节级 BPE 分词器", description="分词器工具。")
    t = add_command(p.add_subparsers(dest="tokenizer_command", required=True), "train", "tokenizer_train",
                    help="训练分词器", description="在语料上训练分词器，写出 DIR/vocab.txt（char）或 DIR/tokenizer.json（bpe）。")
    t.add_argument("--data", type=path, nargs="+", required=True, help="语料：.conv / .jsonl / .tsv，可以多个")
    t.add_argument("--type", default="bpe", choices=["char", "bpe"], help="char 字符级 | bpe 字节级 BPE；默认 %(default)s")
    t.add_argument("--vocab-size", type=COUNT, default=8000, help="词表大小（含 7 个特殊词元）；默认 %(default)s")
    t.add_argument("--out", type=OUT_DIR, required=True, help="输出目录")

    p = add_command(sub, "finetune", help="LoRA 微调：只训练低秩适配器",
                    description="在训练好的模型上装 LoRA 适配器（注意力与前馈的投影），底座冻结，只训练适配器；"
                    "用的是同一个训练循环。--merge 把适配器合并进权重，得到一个普通模型。")
    p.add_argument("run", type=path, help="底座模型：训练目录或检查点文件夹")
    p.add_argument("--data", nargs="+", type=path, default=None, help="微调语料：.conv / .jsonl / .tsv")
    p.add_argument("--example", default=None, choices=["persona"], help="内置例子：persona 给快速上手的模型换一个身份")
    p.add_argument("--out", type=OUT_DIR, required=True, help="输出目录（adapter/ 与 last/）")
    p.add_argument("--lora-rank", type=COUNT, default=8, help="秩 r；默认 %(default)s")
    p.add_argument("--lora-alpha", type=POSITIVE, default=16.0, help="缩放 alpha（支路乘 alpha/r）；默认 %(default)s")
    p.add_argument("--lora-dropout", type=FRACTION, default=0.0, help="支路输入的 dropout；默认 %(default)s")
    p.add_argument("--merge", action=argparse.BooleanOptionalAction, default=False, help="训练后把适配器合并进权重")
    p.add_argument("--max-minutes", type=POSITIVE, default=None, help="训练时间预算（分钟）；都不给时语料训练 1 分钟，内置例子训练 120 步")
    p.add_argument("--max-steps", type=COUNT, default=None, help="最多训练多少步")
    p.add_argument("--lr", type=POSITIVE, default=5e-3, help="学习率；默认 %(default)s")
    p.add_argument("--seed", type=SEED, default=0)
    add_device_arg(p)
    add_progress_arg(p)



def add_break_it_command(sub) -> None:
    """`studygpt lab`：拆掉一个部件的实验（studygpt/labs/，docs/zh/labs.md）。"""
    from studygpt.labs.catalog import LAB_STEPS, LABS
    p = add_command(sub, "lab", help="拆掉一个部件的实验 (break-it labs)：先预测，再训练对照组与实验组，按量出来的数判分",
                    description="不给 NAME 时列出全部实验。给了就：提出问题 → 你选一个预测 → 按快速上手的配方训练对照组和"
                    "只改一处的实验组（同一个种子、同样的步数、同样的数据，CPU）→ 打印两组的损失与考试成绩、画两条曲线 → "
                    "按量出来的数判你的预测 → 三行解释。")
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help=f"实验名：{' | '.join(LABS)}")
    p.add_argument("--predict", type=str.upper, choices=list("ABCD"), default=None,
                   help="你的预测（选项字母）；不给时在终端里问，输出不是终端时只报告、不判分")
    p.add_argument("--seed", type=SEED, default=0, help="随机种子：两组用同一个；默认 %(default)s")
    p.add_argument("--max-steps", type=COUNT, default=LAB_STEPS, help="每组训练多少步；默认 %(default)s")
    p.add_argument("--out", type=OUT_DIR, default=None, help="输出目录（两组的检查点、curves.png、result.json），默认 runs/labs/NAME")
    p.add_argument("--threads", type=COUNT, default=None,
                   help="CPU 上用几个线程；默认每个核一个，别的程序占着 CPU 时先实测，两组都改用更快的线程数")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="训练时在终端里显示进度条；输出不是终端时不显示，每组训练完打印一行")


def add_posttrain_commands(sub) -> None:
    """sft、rl、dpo（第 14、15 章；处理函数都是 commands.cmd_posttrain，训练方案在 recipes/posttrain.py）。"""
    common = [("--task", dict(default="add3", help="任务名（见 posttrain/tasks.py）：add3 = 三位数加法")),
              ("--max-steps", dict(type=COUNT, help="优化步数（sft 默认 200、rl 80、dpo 60；只给 --max-minutes 时不限步数）")), ("--lr", dict(type=POSITIVE, help="学习率")),
              ("--seed", dict(type=SEED, default=0, help="随机种子（同一个种子结果相同）")),
              ("--max-minutes", dict(type=POSITIVE, help="时间预算（分钟）：到时就停，不管步数用没用完"))]
    specs = {
        "sft": ("监督微调：快速上手语料 + 任务训练题（第 14、15 章的起点）", 200, 1e-3,
                [("--problems", dict(type=COUNT, default=6000, help="任务训练题的数量，默认 %(default)s")),
                 ("--sloppy", dict(type=FRACTION, default=0.0, help="任务示范里「停不下来」的坏示范的比例，默认 %(default)s")),
                 ("--format", dict(choices=["direct", "think", "tool"], default="direct",
                                   help="示范怎样回答：direct 直接答，think 先在 <think> 里逐位打草稿（第 16 章），"
                                        "tool 调用计算器（第 17 章）；默认 %(default)s")),
                 ("--eval-every", dict(type=COUNT, help="每几步考一次留出题（画曲线）；默认只在开始和结束时考"))]),
        "rl": ("强化学习 (GRPO)：可验证的奖励、组相对优势、裁剪比率、KL 惩罚", 80, 1e-4,
               [("--group-size", dict(type=COUNT, default=8, help="每道题抽几个回答 G，默认 %(default)s")),
                ("--prompts", dict(type=COUNT, default=16, help="每步几道题 P，默认 %(default)s")),
                ("--kl", dict(type=NONNEG, default=0.05, help="KL 惩罚的权重 β，默认 %(default)s")),
                ("--clip", dict(type=POSITIVE, default=0.2, help="比率裁剪 ε，默认 %(default)s")),
                ("--temperature", dict(type=POSITIVE, default=1.0, help="抽样温度，默认 %(default)s")),
                ("--reward", dict(choices=["exact", "format"], default="exact",
                                  help="exact：只看最后答案对不对；format：只看格式（第 16 章的钻空子演示）；默认 %(default)s")),
                ("--max-new-tokens", dict(type=COUNT, help="每个回答最多多少个词元；默认按模型：会打草稿的 120，否则 24")),
                ("--eval-every", dict(type=COUNT, default=10, help="每几步考一次留出题，默认 %(default)s"))]),
        "dpo": ("偏好微调 (DPO)：冻结的参考模型、β、DPO 损失", 60, 1e-4,
                [("--pairs", dict(type=path, default="builtin", help="偏好文件 JSONL（每行 prompt/chosen/rejected），"
                                                          "或 builtin = 任务的内置偏好；默认 %(default)s")),
                 ("--beta", dict(type=POSITIVE, default=0.1, help="β，默认 %(default)s")),
                 ("--sft-weight", dict(type=NONNEG, default=0.0, help="再加这么多倍 chosen 的 SFT 损失，防止好回答的概率"
                                                                   "也一起下降（似然位移）；默认 %(default)s = 纯 DPO")),
                 ("--batch-size", dict(type=COUNT, default=16, help="每步几条偏好，默认 %(default)s")),
                 ("--eval-every", dict(type=COUNT, default=10, help="每几步在留出偏好上测一次，默认 %(default)s"))]),
    }
    for name, (help_text, steps, lr, extra) in specs.items():
        p = add_command(sub, name, "posttrain", help=help_text, description=help_text + "。见 docs/zh/14_dpo.md、15_rl.md。")
        p.add_argument("run", type=path, help="起点：训练目录或检查点文件夹（如快速上手的 runs/quickstart）")
        p.add_argument("--out", type=OUT_DIR, required=True, help="输出目录（检查点 last/、metrics.jsonl、curves.png、summary.json）")
        for flag, kwargs in common + extra:
            p.add_argument(flag, **kwargs)
        p.set_defaults(default_steps=steps, lr=lr)  # 没给 --max-steps：只给了 --max-minutes 时按时间停，否则走这么多步
        if name != "sft":
            p.add_argument("--resume", action="store_true", help="被打断的运行从 --out/last 接着训练（其余参数与第一次相同）")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(canonical_flags(sys.argv[1:] if argv is None else list(argv)))
    if extra and args.command != "train":
        parser.error(f"无法识别的参数：{' '.join(extra)}")
    try:
        return getattr(commands, f"cmd_{args.handler}")(args, parse_overrides(extra) if extra else {})
    except StudyGPTError as err:
        print(f"错误 (error): {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\n已中断 (interrupted)。", file=sys.stderr)
        return 130
