"""kill -9 耐力测试 (kill soak)：训练进程在 20 个随机时刻被 SIGKILL，每次接着训，最后的权重和一口气训完的一位不差。

    OMP_NUM_THREADS=1 python benchmarks/kill_soak.py [--kills 20] [--steps 240] [--seed 0]

做法：
1. 先在子进程里一口气训完（参照 reference）。
2. 再训同样的一次，但每次都在一个随机时刻 `kill -9`：目标时刻轮流落在"优化步中 (step)""验证中 (validation)"
   "保存检查点中 (saving)"。子进程在每个阶段开始、结束时打印一行标记，父进程看到目标阶段开始后再随机等
   0–40 ms 才杀，并记下被杀时子进程实际处在哪个阶段。为了让"保存中"这个窗口够宽，子进程里的
   os.replace 先睡 20 ms（只在这个脚本的子进程里，库代码不变）。
3. 每次杀完：目录里出现过的每个检查点（last、best，以及保存到一半留下的 .old）都必须能加载，
   last 还要能读出续训状态；然后起一个新子进程从 last 续训。
4. 杀够次数后让它训完，逐个张量比较最后的权重：必须 bit-for-bit 相同 (torch.equal)。

子进程每 SAVE_EVERY 步存一次 last/（on_step 钩子），每 EVAL_EVERY 步验证一次（创新低时存 best/）。
打印的数字（杀了几次、各阶段几次、加载过几个检查点、失败几次）写进 docs/reliability.md。这是脚本，不是测试；
tests/test_kill_soak.py 用很少的步数和 3 次杀跑同一套代码（slow 标记）。
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # 测的是这个检出里的 studygpt

SAVE_EVERY = 5     # 每几步存一次 last/
EVAL_EVERY = 10    # 每几步验证一次
WIDEN_S = 0.02     # 子进程里每次改名前多睡的秒数：把"保存中"的窗口撑宽
PHASES = ("step", "validation", "saving")


# ===== 1. 子进程：训练（可能从 last/ 续训），每个阶段打印标记 =====
def worker(out: Path, steps: int, widen: bool) -> None:
    import torch  # noqa: F401  子进程里才需要

    import studygpt.training.state as train_state
    from studygpt.batches.packing import PackedBatches
    from studygpt.batches.windows import build_windows
    from studygpt.corpus.builtin import builtin_conv_path
    from studygpt.corpus.read import read_dialogues
    from studygpt.model.transformer import DialogueModel, ModelConfig
    from studygpt.tokenizer.char import Tokenizer
    from studygpt.training.trainer import TransformerTrainer

    def mark(text: str) -> None:
        print(text, flush=True)

    def marked(name: str, fn):
        def wrapper(*args, **kwargs):
            mark(f"{name}-begin")
            result = fn(*args, **kwargs)
            mark(f"{name}-end")
            return result
        return wrapper

    if widen:
        real_replace = os.replace

        def slow_replace(src, dst):
            time.sleep(WIDEN_S)
            real_replace(src, dst)
        os.replace = slow_replace
    train_state.save_checkpoint = marked("saving", train_state.save_checkpoint)

    dialogues, _ = read_dialogues(builtin_conv_path())
    dialogues = dialogues[:400]
    tok = Tokenizer().build_vocab(t for d in dialogues for t in d)
    windows = build_windows(dialogues, tok, 64)
    batches = PackedBatches(windows, batch_size=8, seq_len=64, pad_id=tok.token_id("<pad>"), seed=0)
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=tok.vocab_size, d_model=64, n_head=4, n_layers=2,
                                             max_len=64, dropout=0.1))
    config = {"lr": 3e-3, "use_amp": False, "max_steps": steps, "eval_every": EVAL_EVERY, "eval_batches": 4,
              "early_stop_patience": 0, "log_every": 5, "seed": 0, "check_memory": False}

    def save_last(trainer) -> None:
        if trainer.step % SAVE_EVERY == 0:
            trainer.save(out / "last", 0.0)

    trainer = TransformerTrainer(model, batches, "cpu", config, val_loader=batches, tokenizer=tok, out_dir=out,
                                 progress=False, log=lambda s: None, on_step=save_last)
    trainer.train_step = marked("step", trainer.train_step)
    trainer.validate = marked("validation", trainer.validate)
    if any((out / name / "model.safetensors").is_file() for name in ("last", "last.old")):
        trainer.resume(out / "last")
        mark(f"resumed {trainer.step}")
    trainer.train()
    mark("done")


# ===== 2. 父进程：起子进程、看标记、按时杀 =====
def start(out: Path, steps: int, widen: bool) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, __file__, "--worker", str(out), "--steps", str(steps)] + (["--widen"] if widen else [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


class Watcher:
    """在后台线程里读子进程的标记；记下最近一个标记和每种"开始"标记出现的次数。"""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.last, self.begins, self.lines = proc, "", {p: 0 for p in PHASES}, []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            self.lines.append(line)
            self.last = line
            name = line.removesuffix("-begin")
            if name in self.begins:
                self.begins[name] += 1

    def phase_now(self) -> str:
        """被杀那一刻在哪个阶段：最近的标记是某阶段的 -begin 就是那个阶段，否则是两个阶段之间（算在优化步里）。"""
        name = self.last.removesuffix("-begin")
        return name if name in PHASES and self.last.endswith("-begin") else "step"


def check_all_checkpoints_load(out: Path) -> tuple[int, list[str]]:
    """目录里的每个检查点都加载一遍；last（或 last.old）还要读出续训状态。出: (加载了几个, 失败说明)。"""
    from studygpt.model.checkpoint import load_model, load_trainer_state
    loaded, failures = 0, []
    for name in ("last", "last.old", "best", "best.old"):
        ck = out / name
        if not ck.exists():
            continue
        try:
            load_model(ck, announce=False)
            if name.startswith("last"):
                load_trainer_state(ck)
            loaded += 1
        except Exception as err:  # 记下来而不是停下：figures 里要数失败次数
            failures.append(f"{name}: {type(err).__name__}: {err}")
    return loaded, failures


def run_to_end(out: Path, steps: int, widen: bool) -> list[str]:
    proc = start(out, steps, widen)
    stdout, stderr = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"训练子进程失败 (rc={proc.returncode}):\n{stderr[-3000:]}")
    return stdout.split()


def soak(work: Path, kills: int, steps: int, seed: int, log=print) -> dict:
    """整个耐力测试；返回数字 (figures)。"""
    import torch
    from safetensors.torch import load_file

    rng = random.Random(seed)
    t0 = time.time()
    run_to_end(work / "reference", steps, widen=False)
    reference_s = time.time() - t0
    out = work / "soak"
    phases = {p: 0 for p in PHASES}
    loaded_total, failures, resumed_from = 0, [], []
    for i in range(kills):
        target = PHASES[i % len(PHASES)]
        proc = start(out, steps, widen=True)
        watch = Watcher(proc)
        nth = rng.randint(1, 2)  # 等目标阶段第几次开始
        while watch.begins[target] < nth and proc.poll() is None:
            time.sleep(0.001)
        if proc.poll() is not None:
            raise RuntimeError(f"子进程在第 {i + 1} 次杀之前就结束了；请加大 --steps。stderr:\n{proc.stderr.read()[-3000:]}")
        time.sleep(rng.uniform(0, 0.04))
        phase = watch.phase_now()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        watch.thread.join(timeout=5)
        phases[phase] += 1
        resumed_from += [int(line.split()[1]) for line in watch.lines if line.startswith("resumed")]
        loaded, failed = check_all_checkpoints_load(out)
        loaded_total += loaded
        failures += [f"kill {i + 1} ({phase}): {f}" for f in failed]
        log(f"  kill {i + 1:2d}: 目标 {target:<10} 实际 {phase:<10} 加载检查点 {loaded} 个，失败 {len(failed)}")
    lines = run_to_end(out, steps, widen=True)
    resumed_from += [int(lines[i + 1]) for i, w in enumerate(lines) if w == "resumed"]
    ref = load_file(str(work / "reference" / "last" / "model.safetensors"))
    got = load_file(str(out / "last" / "model.safetensors"))
    differing = [k for k in ref if not torch.equal(ref[k], got[k])]
    leftovers = [p.name for p in out.iterdir() if ".tmp-" in p.name]
    return {"kills": kills, "phases": phases, "steps": steps, "resumes": len(resumed_from),
            "resumed_from_steps": resumed_from, "checkpoints_loaded": loaded_total, "load_failures": len(failures),
            "failure_messages": failures[:5], "tensors": len(ref), "tensors_differing": len(differing),
            "bit_identical": not differing, "leftover_tmp_dirs": len(leftovers), "reference_run_s": round(reference_s, 1),
            "total_s": round(time.time() - t0, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="工作目录（默认临时目录，结束后删除）")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--widen", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker), args.steps, args.widen)
        return 0
    from benchmarks._common import print_machine
    machine = print_machine("kill -9 耐力测试 (kill soak)")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kill_soak-"))
    try:
        figures = soak(work, args.kills, args.steps, args.seed)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({**machine, **figures}, ensure_ascii=False, indent=1))
    ok = figures["bit_identical"] and figures["load_failures"] == 0
    print("结果 (result):", "通过 (bit-identical, 0 load failures)" if ok else "失败 (FAILED)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
