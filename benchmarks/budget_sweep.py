"""预算扫描 (budget sweep, issue #28)：同样 B 分钟，多大的模型在留出数据上最好？`--preset auto` 选得对吗？

每个"格子" (cell) = 一个预算 × 一个大小 × 一种数据：
- 固定大小 dN：sizing.py 的同一个家族（d_model = 64·N，N 层，每头 32 维，上下文 256），学习率用同一条规则
  sizing.learning_rate(d_model)。用 study 预设加这些覆盖，而不是 auto 加覆盖：auto 会先实测、花掉时间，
  每个固定格子都应当只训练、不实测；两者的其余设置（词表上限、批大小、调度）都是默认值，完全一样。
- auto：`--preset auto` 自己实测、自己选（和 `studygpt train --preset auto --max-minutes B` 一样），是它自己的格子。
  实测在训练之前，不算进 max_minutes：记下实测花了预算的几成（要求 ≤ 5%），以及实测对所选大小预计的
  tokens/s 与训练真正达到的差多少（要求在 15% 以内）。
训练数据：../shared/data/lccc_20k.conv + cdial_train_10k.conv（--extra-data 再跑一遍加上 subtitles/*.conv 的）；
训练中的验证：cdial_valid_2k.conv（best/ 按它选，所以它不是完全留出的）；训练完在 best/ 上算
cdial_valid_2k.conv 与 kdconv_dev_450.conv（完全没见过的领域）的每字符比特 (bpc)。

每个格子记下：参数、步数、tokens/s、epoch 数、用时、Dist-2（报告里 30 个固定提示、种子 0）、
机器（CPU 型号）、日期、开始与结束时的 1 分钟负载，以及格子期间别的进程平均占了几个核 (other_cores)：
负载里也有本进程自己，所以"忙不忙"按 /proc/stat 减去本进程的 CPU 时间来判断，other_cores > 0.5 记为 busy。

每个格子在一个新的 Python 进程里训练（像学习者每次敲一条 `studygpt train`）。2026-12-07 之前的扫描在同一个进程里
接连训练几个格子：进程的内存越积越多（第 6 个格子开训时已占 9.6 GB），bf16 矩阵乘法从约 830 降到约 400 GFLOP/s，
排在后面的格子就少走了三成的步。那些行在结果文件里标着 shared_process，续跑时当作没做过、报告里不算。
规则改过之后重测的格子，旧的那一行标着 superseded（写着为什么），同样留着备查、不算。

精度 (precision)：默认和 `studygpt train` 一样由机器决定（有快的 bf16 就用 bf16）。--use-amp false 关掉 bf16，全用 fp32
（和 `studygpt train --use-amp false` 同一个写法），
像大多数笔记本（只有 AVX2，bf16 慢 100 倍以上，训练只能用 fp32）或没有 BF16 的 Xeon：在一台有 AMX 的机器上，
它回答"在 fp32 的机器上 auto 比 study 好多少"。这些行记着 precision: fp32，和默认的行分开比、分开报告，图里不画。

可以续跑 (resumable)：每个做完的格子追加一行到结果文件；再跑时跳过已有的（按 预算、大小、数据、CPU 型号 对应）。
结果文件默认是 runs/budget_sweep/budget_sweep.jsonl，每个格子的运行目录是 runs/budget_sweep/<格子>/（runs/ 不进 git）；
加 --record 时结果文件是仓库里的 benchmarks/results/budget_sweep.jsonl（第 10 章的表与图来自它；--report 也读它）。

要多久：每个预算 B，(大小个数 + 1) × B 分钟，再加每格约 1–3 分钟的评估与报告。默认的三个预算
（5 分钟 4+1 格，15 分钟 5+1 格，30 分钟 5+1 格）约 25 + 90 + 180 ≈ 295 分钟，加评估约 5.5 小时；
--extra-data 再加一倍。请在空闲的机器上跑（别的程序占着核时 tokens/s 不可信）：

    python benchmarks/budget_sweep.py                       # 全部（可中断，再跑接着做）
    python benchmarks/budget_sweep.py --budgets 5 --sizes 1 2 3 4   # 只跑一部分
    python benchmarks/budget_sweep.py --extra-data          # 再加上字幕数据的一组
    python benchmarks/budget_sweep.py --use-amp false --budgets 5 --sizes --study   # fp32 的机器上：auto 对 study
    python benchmarks/budget_sweep.py --report              # 表格 + 图 runs/budget_sweep/budget_sweep.png
    python benchmarks/budget_sweep.py --record              # 维护者：格子记进 benchmarks/results/budget_sweep.jsonl（进 git）
    python benchmarks/budget_sweep.py --report --record     # 记录的结果：表格 + 图（第 10 章的数字）
    python benchmarks/budget_sweep.py --report --record --update-docs  # 图写到 docs/zh/img/budget_sweep.png（只用记录的数据）
    python benchmarks/budget_sweep.py --quick               # CI 冒烟：auto 与 d1 两个格子、0.01 分钟、内置语料、新的临时目录
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import REPO, RESULTS, SHARED_DATA, code_version, load_average

from studygpt.corpus.builtin import builtin_conv_path, builtin_corpus, write_conv
from studygpt.corpus.read import read_dialogues
from studygpt.evaluation.metrics import data_metrics
from studygpt.hardware import cpuinfo_field, describe_machine
from studygpt.recipes import sizing
from studygpt.recipes.report import md_table, report_model
from studygpt.recipes.train import RunSpec, train_from_spec

DEFAULT_SIZES = {5: [1, 2, 3, 4], 15: [1, 2, 3, 4, 6], 30: [2, 3, 4, 6, 8]}  # 围着预计的最优点（见 --report）
TRAIN_FILES = ["lccc_20k.conv", "cdial_train_10k.conv"]
VAL_FILE = "cdial_valid_2k.conv"
EVAL_FILES = {"cdial_valid": "cdial_valid_2k.conv", "kdconv_dev": "kdconv_dev_450.conv"}
BUSY_CORES = 0.5      # 格子期间别的进程平均占了超过半个核：数字不可信
AUTO_MARGIN = 0.1     # auto 离最好的大小在 0.1 bpc 以内，算"选得对"
RUNS = REPO / "runs" / "budget_sweep"


# ===== 1. 命令行 (command line) =====
def yes_no(text: str) -> bool:
    """`--use-amp false`：和 studygpt train 的 `--key value` 一样，写 true / false。"""
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"要写 true 或 false，不是 {text!r}")
    return text.lower() == "true"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budgets", type=float, nargs="+", help="预算（分钟），默认 5 15 30")
    p.add_argument("--sizes", type=int, nargs="*", help="固定大小的 depth（每个预算都用它）；默认按预算见 DEFAULT_SIZES；"
                   "只写 --sizes 不跟数字 = 不跑固定大小（只跑 auto 与 --study）")
    p.add_argument("--auto", action=argparse.BooleanOptionalAction, default=True, help="每个预算也跑 auto 格子")
    p.add_argument("--study", action=argparse.BooleanOptionalAction, default=False,
                   help="每个预算也跑 study 预设（原项目的大小）作对照：第 28 号问题的目标是 auto 比它低多少 bpc")
    p.add_argument("--extra-data", action=argparse.BooleanOptionalAction, default=False,
                   help="再跑一组：训练数据加上 ../shared/data/subtitles/*.conv")
    p.add_argument("--use-amp", type=yes_no, default=True, metavar="{true,false}",
                   help="false = 训练全用 fp32（关掉 bf16），像只有 AVX2 的笔记本；这些格子单独记、单独比（见模块说明）")
    p.add_argument("--threads", type=int, help="CPU 线程数（默认 PyTorch 的默认值）")
    p.add_argument("--results", type=Path, help="结果文件（默认 runs/budget_sweep/budget_sweep.jsonl；--record 时是 "
                   "benchmarks/results/budget_sweep.jsonl）")
    p.add_argument("--record", action="store_true", help="结果文件用仓库里的 benchmarks/results/budget_sweep.jsonl（进 git）")
    p.add_argument("--runs", type=Path, help="运行目录的上一级（默认 runs/budget_sweep）")
    p.add_argument("--quick", action="store_true",
                   help="CI 冒烟：一个 0.01 分钟的预算、auto + depth 1 两个格子、内置语料；结果与运行目录放进一个新的临时目录"
                        "（每次都真的跑一遍；要续跑就给 --results 与 --runs）")
    p.add_argument("--report", action="store_true", help="不训练：读结果文件，打印 Markdown 表格并画图")
    p.add_argument("--update-docs", action="store_true",
                   help="和 --report --record 一起：图写到 docs/zh/img/budget_sweep.png")
    p.add_argument("--one-cell", help=argparse.SUPPRESS)  # 内部用：子进程里训练一个格子（JSON）
    p.add_argument("--row-file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.update_docs and not (args.report and args.record):
        p.error("--update-docs 只和 --report --record 一起用：课程的图只画记录在仓库里的结果")
    if args.quick:  # 走一遍规则的全部代码（实测、选大小、和固定大小比、报告），越快越好：每个格子的开销是固定的
        args.budgets, args.sizes = args.budgets or [0.01], args.sizes if args.sizes is not None else [1]
        args.threads = args.threads or 1  # 一个线程：CI 的机器常常只有两个核还被别的程序占着一个，两个线程反而慢几倍
        if args.runs is None and not args.report:
            args.runs = Path(tempfile.mkdtemp(prefix="studygpt_budget_sweep_quick_"))
    args.runs = args.runs or RUNS
    if args.results is None:
        args.results = RESULTS / "budget_sweep.jsonl" if args.record else args.runs / "budget_sweep.jsonl"
    args.budgets = args.budgets or sorted(DEFAULT_SIZES)
    return args


# ===== 2. 数据 (which files each variant trains and evaluates on) =====
def real_data(extra: bool) -> dict | None:
    """真实语料的文件：{"train": [...], "val": 路径, "eval": {名字: 路径}}；训练文件不在时返回 None。"""
    train = [SHARED_DATA / name for name in TRAIN_FILES]
    missing = [p for p in train + [SHARED_DATA / VAL_FILE] if not p.exists()]
    if missing:
        print(f"跳过 (skipped): 找不到共享语料 {', '.join(map(str, missing))}（只在有 ../shared/data 的检出里运行）")
        return None
    if extra:
        train += sorted((SHARED_DATA / "subtitles").glob("*.conv"))
    evals = {}
    for name, file in EVAL_FILES.items():
        if (SHARED_DATA / file).exists():
            evals[name] = SHARED_DATA / file
        else:
            print(f"跳过留出集 (skipped eval file): 找不到 {SHARED_DATA / file}")
    return {"train": train, "val": SHARED_DATA / VAL_FILE, "eval": evals}


def quick_data(folder: Path) -> dict:
    """--quick：训练用内置的自写语料，验证与"留出"用 chatterbot 的前 200 段（写成临时 .conv）。"""
    held_out = folder / "chatterbot_200.conv"
    if not held_out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_conv(builtin_corpus().chatterbot[:200], held_out)
    return {"train": [builtin_conv_path()], "val": held_out, "eval": {"chatterbot": held_out}}


# ===== 3. 格子与结果文件 (cells and the results file) =====
def cpu_model() -> str:
    return cpuinfo_field("model name") or "unknown CPU"


def cell_key(budget: float, size: str, data: str, cpu: str, precision: str = "auto") -> tuple:
    return (float(budget), size, data, cpu, precision)


def precision_of(row: dict) -> str:
    """"auto"（机器决定，默认）或 "fp32"（--use-amp false）。"""
    return row.get("precision", "auto")


def done_cells(path: Path) -> set[tuple]:
    """结果文件里已经做完的格子（文件不在时为空）；read_rows 略过的行不算做完。"""
    return {cell_key(r["budget_min"], r["size"], r["data"], r["cpu"], precision_of(r)) for r in read_rows(path)}


def read_rows(path: Path) -> list[dict]:
    """结果文件里可信的行：shared_process 与 superseded 的行（见模块说明）留在文件里备查，这里略过。"""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if not (r.get("shared_process") or r.get("superseded"))]


def append_row(path: Path, row: dict) -> None:
    """一个格子一行，做完就写（中断后再跑，从下一个格子接着做）。"""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def cpu_seconds() -> tuple[float, float]:
    """(整台机器忙着的 CPU 秒数, 本进程用的 CPU 秒数)：两者之差就是别的进程用的。读不到 /proc/stat 时为 0。"""
    t = os.times()
    ours = t.user + t.system + t.children_user + t.children_system
    try:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), ours
    except (OSError, ValueError):
        return 0.0, ours


# ===== 4. 训练一个格子 (train one cell) =====
def cell_spec(budget: float, size: str, data: dict, out: Path, threads: int | None, fp32: bool = False) -> RunSpec:
    """dN：study 预设 + 家族的大小 + 学习率规则；auto：--preset auto，自己实测、自己选。fp32：关掉 bf16。"""
    common = dict(data=[str(p) for p in data["train"]], val=str(data["val"]), out=str(out), device="cpu",
                  threads=threads)
    train = {"max_minutes": budget, **({"use_amp": False} if fp32 else {})}
    if size == "auto":  # auto 的实测也用 fp32：它量的是训练会用的精度
        return RunSpec(preset="auto", train=train, **common)
    if size == "study":  # 对照：原项目的大小（512 宽、4 层），不按预算改
        return RunSpec(preset="study", train=train, **common)
    c = sizing.family_config(int(size[1:]), vocab_size=1)
    model = {"d_model": c.d_model, "n_head": c.n_head, "n_layers": c.n_layers, "max_len": c.max_len}
    return RunSpec(preset="study", model=model, train={**train, "lr": sizing.learning_rate(c.d_model)}, **common)


def training_speed(history: list[dict]) -> float | None:
    """训练本身的 tokens/s：每 log_every 步记一次的窗口速度取中位数（第 1 步含一次性开销、含验证的窗口偏慢，
    中位数不受它们影响）；一个窗口也没有时为 None。"""
    speeds = [h["tokens_per_s"] for h in history if "tokens_per_s" in h and h["step"] > 1]
    return statistics.median(speeds) if speeds else None


def probe_check(spec: RunSpec, vocab_size: int, budget: float, achieved: float) -> dict:
    """auto 格子：选了哪个 depth，实测花了预算的几成，实测对这个 depth 预计的 tokens/s 与训练达到的比。"""
    s = spec.sizing
    probes = [sizing.Probe(**p) for p in s["probes"]]
    predicted = sizing.interpolate_flops(probes, s["depth"]) / sizing.flops_per_token(
        sizing.family_config(s["depth"], vocab_size))
    if s.get("compile") and s.get("compile_probe"):  # 选了编译：训练时快了实测的这么多倍
        predicted *= sizing.compile_speed_up(s["compile_probe"])
    ratio = predicted / achieved
    return {"auto_depth": s["depth"], "auto_data_limited": s["data_limited"], "auto_compile": s.get("compile"),
            "probe_s": s["probe_seconds"],
            "probe_share": s["probe_seconds"] / (budget * 60), "probe_tokens_per_s": predicted,
            "probe_vs_train": ratio, "probe_ok": s["probe_seconds"] <= 0.05 * budget * 60 and abs(ratio - 1) <= 0.15}


def run_cell(budget: float, size: str, variant: str, data: dict, out: Path, threads: int | None,
             fp32: bool = False) -> dict:
    """训练一个格子，在 best/ 上算每个留出集的 bpc，返回结果文件的一行。日志写进 <out>/sweep.log。"""
    if out.exists():
        shutil.rmtree(out)  # 上次没做完的格子：从头来（只有做完的才写进结果文件）
    out.mkdir(parents=True)
    log_file = (out / "sweep.log").open("w", encoding="utf-8")
    log = lambda text: print(text, file=log_file, flush=True)  # noqa: E731
    load_start, (busy0, ours0), t0 = load_average(), cpu_seconds(), time.perf_counter()
    spec = cell_spec(budget, size, data, out, threads, fp32)
    trainer, summary = train_from_spec(spec, log=log, progress=False)
    model = report_model(trainer)  # best/（验证损失最低的那次），`studygpt chat` 默认加载的也是它
    bpc = {}
    for name, path in data["eval"].items():
        dialogues, _ = read_dialogues(path)
        bpc[name] = data_metrics(model, trainer.tokenizer, dialogues)["bpc"]
    wall = time.perf_counter() - t0
    busy1, ours1 = cpu_seconds()
    log_file.close()
    achieved = training_speed(trainer.history) or summary["tokens_per_s"]  # 不到 log_every 步时只有总平均
    row = {"budget_min": budget, "size": size, "data": variant, "cpu": cpu_model(),
           **({"precision": "fp32"} if fp32 else {}), "precision_used": trainer.precision.name,
           "depth": trainer.model.config.n_layers, "d_model": trainer.model.config.d_model,
           "params": trainer.model.num_params(), "steps": summary["steps"], "tokens": summary["tokens"],
           "epochs": summary["tokens"] / int(trainer.train_loader.lengths.sum()),
           "tokens_per_s": achieved, "tokens_per_s_overall": summary["tokens_per_s"],  # 后者含验证的时间
           "train_s": summary["elapsed_s"], "wall_s": wall, "bpc": bpc,
           "distinct_2": summary["metrics"].get("distinct_2"),
           "load_start": load_start, "load_end": load_average(), "pid": os.getpid(),
           "other_cores": max(0.0, (busy1 - busy0) - (ours1 - ours0)) / wall if busy1 else None}
    row["busy"] = bool(row["other_cores"] and row["other_cores"] > BUSY_CORES)
    if size == "auto":
        row.update(probe_check(spec, trainer.tokenizer.vocab_size, budget, achieved))
    return row


def run_cell_in_new_process(budget: float, size: str, variant: str, data: dict, out: Path, threads: int | None,
                            fp32: bool = False) -> dict:
    """在一个新的 Python 进程里跑 run_cell（本脚本加 --one-cell），读回它写下的结果行。"""
    job = {"budget": budget, "size": size, "variant": variant, "out": str(out), "threads": threads, "fp32": fp32,
           "data": {"train": [str(p) for p in data["train"]], "val": str(data["val"]),
                    "eval": {k: str(v) for k, v in data["eval"].items()}}}
    out.parent.mkdir(parents=True, exist_ok=True)
    row_file = out.parent / f"{out.name}.row.json"
    row_file.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one-cell", json.dumps(job),
                           "--row-file", str(row_file)])
    if done.returncode != 0 or not row_file.exists():
        raise SystemExit(f"格子 {out.name} 没有做完（退出码 {done.returncode}）：看 {out / 'sweep.log'} 与上面的输出")
    row = json.loads(row_file.read_text(encoding="utf-8"))
    row_file.unlink()
    return row


def one_cell(job: dict, row_file: Path) -> None:
    """--one-cell：子进程里训练一个格子，把结果行写进 row_file。"""
    data = {"train": [Path(p) for p in job["data"]["train"]], "val": Path(job["data"]["val"]),
            "eval": {k: Path(v) for k, v in job["data"]["eval"].items()}}
    row = run_cell(job["budget"], job["size"], job["variant"], data, Path(job["out"]), job["threads"],
                   job.get("fp32", False))
    row_file.write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")


# ===== 5. 扫描：每个预算先跑 auto，再跑固定大小 (the sweep) =====
def sweep(args: argparse.Namespace) -> None:
    variants = ["base"] + (["extra"] if args.extra_data else [])
    fp32 = not args.use_amp
    cpu, precision = cpu_model(), "fp32" if fp32 else "auto"
    print(f"机器 (machine): {describe_machine()} · 代码 (code) {code_version()}"
          f"{' · 全用 fp32 (--use-amp false)' if fp32 else ''}")
    print(f"结果文件 (results): {args.results}")
    for variant in variants:
        data = quick_data(args.runs) if args.quick else real_data(variant == "extra")
        if data is None:
            return
        for budget in args.budgets:
            sizes = args.sizes if args.sizes is not None else DEFAULT_SIZES.get(int(budget), [1, 2, 3, 4])
            for size in (["auto"] if args.auto else []) + [f"d{d}" for d in sizes] + (["study"] if args.study else []):
                name = f"{variant}_{budget:g}min_{size}" + ("_fp32" if fp32 else "")
                if cell_key(budget, size, variant, cpu, precision) in done_cells(args.results):
                    print(f"已做过，跳过 (done, skipped): {name}")
                    continue
                print(f"格子 (cell) {name} …", flush=True)
                row = run_cell_in_new_process(budget, size, variant, data, args.runs / name, args.threads, fp32)
                row.update(date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           machine=describe_machine(), code=code_version(), quick=args.quick)
                append_row(args.results, row)
                bpcs = " · ".join(f"{k} {v:.3f}" for k, v in row["bpc"].items())
                auto = f" · auto 选了 depth {row['auto_depth']}" if size == "auto" else ""
                print(f"  {row['params'] / 1e6:.2f}M 参数 · {row['steps']} 步 · {row['epochs']:.2f} epoch · "
                      f"bpc {bpcs}{auto}{' · 机器忙 (busy)' if row['busy'] else ''}")


# ===== 6. 报告：表格与 isoFLOP 图 (report: table and figure) =====
def budget_summary(cells: list[dict], files: list[str]) -> list:
    """一个预算的一行：每个留出集上量过的最好的大小（家族的 dN、study 对照、auto 自己都算），auto 选了谁，
    auto 在 0.1 bpc 以内吗（两个集都要）。只有 auto 一个格子时没有可比的，记"—"。"""
    others = [r for r in cells if r["size"] != "auto"]
    auto = next((r for r in cells if r["size"] == "auto"), None)
    best = {f: min(cells, key=lambda r: r["bpc"][f]) for f in files} if others else {}
    within = None
    if auto and best:
        within = all(auto["bpc"][f] - best[f]["bpc"][f] <= AUTO_MARGIN for f in files)
    name = lambda r: f"auto → d{r['auto_depth']}" if r["size"] == "auto" else r["size"]  # noqa: E731
    return [f"{cells[0]['budget_min']:g}", *[f"{name(best[f])} ({best[f]['bpc'][f]:.3f})" if best else "—"
                                             for f in files],
            f"d{auto['auto_depth']}" if auto else "—", {True: "是 (yes)", False: "否 (no)", None: "—"}[within]]


def report_table(rows: list[dict]) -> str:
    """格子表（预算 × 大小）与每个预算的小结，Markdown。"""
    files = sorted({f for r in rows for f in r["bpc"]})
    out = []
    for data, precision in sorted({(r["data"], precision_of(r)) for r in rows}):
        group = sorted([r for r in rows if r["data"] == data and precision_of(r) == precision],
                       key=lambda r: (r["budget_min"], r["params"]))
        out.append(f"### 数据 (data): {data}" + (" · 全用 fp32 (--use-amp false)" if precision == "fp32" else ""))
        out.append(md_table(["预算 (min)", "大小 (size)", "参数 (params)", "步 (steps)", "epoch", "tokens/s",
                             *[f"bpc {f}" for f in files], "Dist-2", "busy"],
                            [[f"{r['budget_min']:g}", r["size"] + (f" → d{r['auto_depth']}" if r["size"] == "auto" else ""),
                              f"{r['params'] / 1e6:.2f}M", r["steps"], f"{r['epochs']:.2f}",
                              f"{r['tokens_per_s']:,.0f}",
                              *[f"{r['bpc'][f]:.3f}" if f in r["bpc"] else "—" for f in files],
                              f"{r['distinct_2']:.3f}" if r.get("distinct_2") is not None else "—",
                              "忙" if r["busy"] else ""] for r in group]))
        budgets = sorted({r["budget_min"] for r in group})
        out.append(md_table(["预算 (min)", *[f"最好 (best) {f}" for f in files], "auto 选了", "auto 在 0.1 bpc 以内"],
                            [budget_summary([r for r in group if r["budget_min"] == b], files) for b in budgets]))
        autos = [r for r in group if r["size"] == "auto"]
        if autos:
            out.append(md_table(["预算 (min)", "实测 (probe) 秒", "占预算", "实测预计 tokens/s", "训练达到 tokens/s",
                                 "比 (ratio)", "≤5% 且 ±15%"],
                                [[f"{r['budget_min']:g}", f"{r['probe_s']:.1f}", f"{r['probe_share']:.1%}",
                                  f"{r['probe_tokens_per_s']:,.0f}",
                                  f"{r['tokens_per_s']:,.0f}", f"{r['probe_vs_train']:.2f}",
                                  "是" if r["probe_ok"] else "否"] for r in autos]))
    return "\n\n".join(out)


def plot_isoflop(rows: list[dict], path: Path) -> Path:
    """每个留出集一幅：横轴参数（对数），纵轴 bpc，每个预算一条线（固定大小），auto 用星号标出；extra 数据画虚线。
    fp32（--use-amp false）的格子不画（它们只有 auto 与 study，和机器自己选精度的格子不在一条曲线上）。"""
    rows = [r for r in rows if precision_of(r) == "auto"]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from studygpt.plotting import setup_cjk_font
    setup_cjk_font()  # 没有中文字体时它打印一行安装提示
    files = sorted({f for r in rows for f in r["bpc"]})
    fig, axes = plt.subplots(1, len(files), figsize=(5.5 * len(files), 4), squeeze=False)
    budgets = sorted({r["budget_min"] for r in rows})
    colors = {b: plt.cm.viridis(i / max(len(budgets) - 1, 1)) for i, b in enumerate(budgets)}
    for ax, f in zip(axes[0], files):
        for (b, data) in sorted({(r["budget_min"], r["data"]) for r in rows}):
            cells = [r for r in rows if r["budget_min"] == b and r["data"] == data and f in r["bpc"]]
            fixed = sorted([r for r in cells if r["size"].startswith("d")], key=lambda r: r["params"])
            style = "o-" if data == "base" else "s--"
            if fixed:  # 只有 auto 的一组（如加字幕）没有线，也不进图例
                ax.plot([r["params"] for r in fixed], [r["bpc"][f] for r in fixed], style, color=colors[b],
                        label=f"{b:g} 分钟 ({data})")
            for r in (r for r in cells if r["size"] == "auto"):  # 加字幕 (extra) 的 auto：空心星
                hollow = data != "base"
                ax.plot(r["params"], r["bpc"][f], "*", color=colors[b], markersize=16, markeredgewidth=1.5,
                        markeredgecolor=colors[b] if hollow else "black", markerfacecolor="none" if hollow else colors[b])
            for r in (r for r in cells if r["size"] == "study"):
                ax.plot(r["params"], r["bpc"][f], "x", color=colors[b], markersize=10)
        ax.set_xscale("log")
        ax.set_xlabel("参数 (parameters)")
        ax.set_ylabel(f"留出 bpc ({f}) ↓")
        ax.grid(alpha=0.3)
        ax.set_title(f"{f}：★ = auto 的选择（空心 = 加字幕），× = study", fontsize=10)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("同样的时间预算，多大的模型最好？(isoFLOP-style budget sweep)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def report(args: argparse.Namespace) -> None:
    rows = read_rows(args.results)
    if not rows:
        print(f"结果文件 {args.results} 里还没有格子：先跑 python benchmarks/budget_sweep.py"
              "（读仓库里记录的结果：--report --record）")
        return
    for cpu in sorted({r["cpu"] for r in rows}):
        mine = [r for r in rows if r["cpu"] == cpu]
        print(f"## {cpu}（{len(mine)} 个格子，{min(r['date'] for r in mine)[:10]} 到 {max(r['date'] for r in mine)[:10]}）\n")
        print(report_table(mine) + "\n")
    figure = REPO / "docs" / "zh" / "img" / "budget_sweep.png" if args.update_docs else args.runs / "budget_sweep.png"
    print(f"图 (figure): {plot_isoflop(rows, figure)}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one_cell:
        one_cell(json.loads(args.one_cell), args.row_file)
    else:
        report(args) if args.report else sweep(args)


if __name__ == "__main__":
    main()
