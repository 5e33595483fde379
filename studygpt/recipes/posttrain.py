"""后训练的三次运行 (post-training runs)：在一个任务上监督微调 (SFT) → 强化学习 (RL) / 偏好微调 (DPO)。

每次运行都从一个已有的检查点出发，用同一个训练循环 (training/trainer.py)，只换数据和目标函数：
    sft：语言模型损失 lm_loss，数据 = 快速上手的语料 + 任务的训练题（混着学，免得忘了聊天）；
    rl ：GRPOObjective（posttrain/rl.py），数据 = 每步现抽的回答 RolloutBatches；
    dpo：DPOObjective（posttrain/dpo.py），数据 = 偏好对 PairBatches。
检查点、续训 (--resume)、metrics.jsonl 与普通训练相同；另外每隔几步考一次留出题与 20 个固定聊天问题，
画出曲线 (curves.png)。命令行 `studygpt sft|rl|dpo` 调用这里。
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from studygpt.corpus.builtin import builtin_corpus
from studygpt.errors import StudyGPTError
from studygpt.evaluation.exam import addition_questions, chat_questions, take_exam
from studygpt.generation.batch_decode import greedy_batch
from studygpt.generation.tool_use import greedy_replies, thinks_or_calls
from studygpt.model.checkpoint import load_model, resolve_checkpoint
from studygpt.plotting import plot_metric_panels
from studygpt.posttrain.dpo import (
    DPOObjective,
    Pair,
    PairBatches,
    builtin_pairs,
    evaluate_preferences,
    read_pairs,
)
from studygpt.posttrain.rl import GRPOObjective, RLConfig, RolloutBatches
from studygpt.posttrain.scratchpad import demonstration, demonstrations
from studygpt.posttrain.tasks import (
    Problem,
    Task,
    accuracy,
    get_task,
    looping_answer,
    parse_answer,
    stable_percent,
)
from studygpt.recipes.report import write_summary
from studygpt.tokenizer.chat_format import Reply
from studygpt.tokenizer.specials import THINK, THINK_END
from studygpt.training.trainer import TransformerTrainer


@dataclass
class Scores:
    """一次考试：留出题完全答对的比例、20 个固定聊天问题答对的比例，和几条留出题的回答。"""
    heldout: float
    chat: float
    samples: list[tuple[str, str]]
    two_digit: float | None = None  # 快速上手留出的两位数加法（只在 with_sums=True 时考）：学新本事时别把旧的忘了

    def line(self) -> str:
        sums = f" · 两位数加法 (2-digit sums) {self.two_digit:.0%}" if self.two_digit is not None else ""
        return f"留出题 (held-out) {self.heldout:.1%} · 固定聊天问题 (20 chat prompts) {self.chat:.0%}{sums}"

    def numbers(self) -> dict:
        return {"heldout_acc": self.heldout, "chat_acc": self.chat,
                **({"two_digit_acc": self.two_digit} if self.two_digit is not None else {})}


def take_scores(model, tokenizer, task: Task, problems: int = 200, samples: int = 4, with_sums: bool = False) -> Scores:
    """贪心解码 (greedy) 考一次：结果可复现。会打草稿、会调用工具的模型照样打草稿、调用计算器，只看正文判分。"""
    held = task.heldout_problems(problems)
    if thinks_or_calls(tokenizer):
        full = greedy_replies(model, tokenizer, [p.question for p in held], max_length=REPLY_TOKENS)
        replies, shown = [r.content for r in full], [show_reply(r) for r in full]
    else:
        replies = shown = greedy_batch(model, tokenizer, [p.question for p in held], max_length=24)
    chat = take_exam(model, tokenizer, chat_questions()).accuracy
    sums = take_exam(model, tokenizer, addition_questions(builtin_corpus(0).addition_heldout)).accuracy if with_sums else None
    return Scores(accuracy(held, replies), chat, [(p.question, r) for p, r in zip(held[:samples], shown)], sums)


REPLY_TOKENS = 120  # 草稿 + 工具调用 + 正文最多多少个词元（add3 的草稿 32 个字、调用约 60）


def show_reply(reply: Reply) -> str:
    """给人看的一行：<think>草稿</think> <tool_call>调用</tool_call> → 结果 正文。"""
    parts = [f"<think>{reply.reasoning}</think>" if reply.reasoning else "",
             f"<tool_call>{reply.tool_call}</tool_call> → {reply.tool_result}" if reply.tool_call else "", reply.content]
    return " ".join(p for p in parts if p)


def trainer_config(steps: int, lr: float, batch_size: int, seq_len: int, seed: int) -> dict:
    """后训练的训练设置：步数预算、较小的学习率、不做权重衰减（要留在起点附近，不是往 0 拉）、不早停。"""
    warmup = max(1, min(10, steps // 10)) if steps > 1 else 0  # 预热要比整个训练短：只走 1 步时不预热
    return {"lr": lr, "max_steps": steps, "warmup_steps": warmup, "weight_decay": 0.0,
            "batch_size": batch_size, "seq_len": seq_len, "seed": seed, "log_every": 1, "check_memory": False,
            "early_stop_patience": 0, "keep_best": False, "min_lr_ratio": 0.5}


def frozen_copy(path) -> torch.nn.Module:
    """参考模型 (reference)：再加载一遍起点检查点，冻结所有参数。"""
    reference, _, _ = load_model(path, announce=False)
    return reference.requires_grad_(False).eval()


def save_progress(trainer: TransformerTrainer, clock: "Clock") -> None:
    """每次考试之后存一份 last/：运行被打断时，同样的命令加 --resume 从这里接着训练（设置与步数预算沿用第一次的）。"""
    trainer.save(trainer.out_dir / "last", trainer.elapsed_before + clock.seconds()["wall_s"])


def exam_hook(first: dict | None, stats: Callable[[], dict], exam: Callable[[TransformerTrainer, dict], tuple[dict, str]],
              eval_every: int, steps: int, clock: "Clock", log: Callable[[str], None]):
    """训练器的 on_step：每步把 stats() 记进 metrics.jsonl；每 eval_every 步（和最后一步）考一次 (exam)、
    打印一行、存 last/ 以便续训。first：第 0 步（训练之前）的考试结果，续训时为 None。"""
    def on_step(tr: TransformerTrainer) -> None:
        if first is not None and tr.step == 1:  # 第 0 步的考试：train() 开始时清空了旧记录，所以在这里补记
            tr.metrics.write({"step": 0, **first})
        entry = {"step": tr.step, **stats()}
        due = tr.step % eval_every == 0 or tr.step == steps
        if due:
            scores, line = exam(tr, entry)
            entry.update(scores, **clock.seconds())
            log(f"  第 {tr.step} 步 · {line} · {clock.text()}")
        tr.metrics.write(entry)
        if due:
            save_progress(tr, clock)
    return on_step


def resume_or_start(trainer: TransformerTrainer, out: Path, resume: bool, log: Callable[[str], None]) -> None:
    if resume:
        trainer.resume(out / "last")
        log(f"从 {out / 'last'} 续训：第 {trainer.step} 步")


class Clock:
    """墙钟时间 (wall) 与本进程的 CPU 时间：机器被别的程序占着时，两者差得多，CPU 时间更能说明算了多少。"""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def text(self) -> str:
        return f"{time.perf_counter() - self.wall:.0f} 秒 (wall) · CPU {time.process_time() - self.cpu:.0f} 秒"

    def seconds(self) -> dict:
        return {"wall_s": round(time.perf_counter() - self.wall, 1), "cpu_s": round(time.process_time() - self.cpu, 1)}


# ===== 1. 监督微调 (SFT)：让模型在任务上"会一点" =====
def sft_dialogues(task: Task, problems: int, sloppy: float, seed: int, form: str = "direct") -> list[list]:
    """任务的示范 (demonstrations)：problems 道训练题，form 是回答的写法（direct / think / tool，见 posttrain/scratchpad.py）；
    其中约 sloppy 的比例是"停不下来"的坏示范（答完又把同一句说一遍，见 tasks.looping_answer）——
    真实的示范数据也不完美，监督学习会把坏习惯一起学去。"""
    return demonstrations(task, problems, form, seed, sloppy, looping_answer)


def with_tool(dialogue: list) -> list:
    """快速上手的一道加法 [问题, `a加b等于c。`] → 同一个问题，回答改成调用计算器（认不出算式时原样返回）。"""
    parsed = parse_answer(dialogue[1]) if len(dialogue) == 2 else None
    if parsed is None:
        return dialogue
    a, op, b, _ = parsed
    return [dialogue[0], demonstration(Problem(a, b, op), "tool")]


def extend_vocab(model, tokenizer, dialogues: list[list], log: Callable[[str], None]) -> None:
    """示范里用到、词表里却没有的词元（<think> 等控制词元、JSON 的 `{`）追加到词表末尾，嵌入矩阵跟着加行。"""
    from studygpt.tokenizer.specials import TOOL, TOOL_CALL, TOOL_CALL_END
    needed: list[str] = []
    for turns in dialogues:
        for turn in turns:
            if isinstance(turn, Reply):
                needed += [THINK, THINK_END] if turn.reasoning else []
                needed += [TOOL_CALL, TOOL_CALL_END, TOOL] if turn.tool_call else []
                needed += list(turn.reasoning + turn.tool_call + turn.tool_result + turn.content)
            else:
                needed += list(turn)
    before = tokenizer.vocab_size
    added = tokenizer.add_tokens(needed)
    if added:
        model.resize_vocab(tokenizer.vocab_size)
        shown = " ".join(added[:12]) + (" …" if len(added) > 12 else "")
        log(f"词表 (vocab) {before} → {tokenizer.vocab_size}：新加 {shown}")


def run_sft(start, out, task_name: str = "add3", problems: int = 6000, steps: int = 200, lr: float = 1e-3,
            sloppy: float = 0.0, seed: int = 0, log: Callable[[str], None] = print, form: str = "direct",
            max_minutes: float | None = None, eval_every: int | None = None) -> dict:
    """从 start 出发，在"快速上手的语料 + problems 道任务训练题"上用语言模型损失训练 steps 步
    （给了 max_minutes 时也到时就停）。sloppy：任务示范里坏示范的比例（见 sft_dialogues）；
    form：示范的写法，direct 直接答、think 先打草稿、tool 调用计算器（第 16、17 章）；
    eval_every：每这么多步考一次留出题（记进 metrics.jsonl，画第 16 章的曲线），None 只在前后各考一次。"""
    from studygpt.batches.packing import PackedBatches
    from studygpt.batches.windows import build_windows
    from studygpt.tokenizer.specials import PAD
    task, out = get_task(task_name), Path(out)
    model, tokenizer, _ = load_model(start, announce=False)
    corpus = builtin_corpus(seed)
    # 混进快速上手的全部语料：只学新题的话，模型会把聊天和两位数加法忘掉 (catastrophic forgetting)
    task_dialogues = sft_dialogues(task, problems, sloppy, seed, form)
    # 学调用计算器时，快速上手的两位数加法也改成调用：同一种题两种答法会互相打架（实测两位数加法从 95% 掉到 93%）
    sums = [with_tool(d) for d in corpus.addition_train] if form == "tool" else corpus.addition_train
    dialogues = corpus.own * 6 + corpus.chatterbot + sums + task_dialogues
    extend_vocab(model, tokenizer, task_dialogues, log)
    seq_len = model.config.max_len
    batches = PackedBatches(build_windows(dialogues, tokenizer, seq_len), 16, seq_len, tokenizer.token_id(PAD), seed=seed)
    if len(batches) == 0:  # 内置语料总在里面，平常不会发生；语料被换掉时，宁可一句话停下也不空转
        raise StudyGPTError(f"SFT 数据打包后只有 {batches.num_rows()} 行，少于一批 16 行：请用更多任务训练题（--problems）。")
    before, clock = take_scores(model, tokenizer, task, with_sums=True), Clock()
    log(f"起点 (start) {start}: {before.line()}")
    config = {**trainer_config(steps, lr, 16, seq_len, seed), "log_every": 10, "min_lr_ratio": 0.1,
              "max_minutes": max_minutes}
    trainer = TransformerTrainer(model.train(), batches, "cpu", config, tokenizer=tokenizer, out_dir=out,
                                 progress=False, log=log)
    trainer.run_info = {"sft": {"start": str(resolve_checkpoint(start)), "task": task_name, "problems": problems,
                                "sloppy": sloppy, "format": form}}
    if eval_every:
        def exam(tr: TransformerTrainer, entry: dict) -> tuple[dict, str]:
            scores = take_scores(tr.model, tokenizer, task)
            return scores.numbers(), f"loss {tr.train_losses[-1]:.3f} · {scores.line()}"
        trainer.on_step = exam_hook({"heldout_acc": before.heldout, "chat_acc": before.chat}, dict, exam,
                                    eval_every, steps, clock, log)
    trainer.train()
    train_s = clock.seconds()
    after = take_scores(model, tokenizer, task, with_sums=True)
    log(f"SFT {trainer.step} 步之后 (after): {after.line()} · {clock.text()}")
    for question, reply in after.samples[:2]:
        log(f"  {question} → {reply}")
    summary = {"task": task_name, "steps": trainer.step, "sloppy": sloppy, "format": form, "before": before.__dict__,
               "after": after.__dict__, "train_s": train_s["wall_s"], **clock.seconds()}
    write_summary(out, summary)
    return summary


# ===== 2. 强化学习 (RL, GRPO) =====
def run_rl(start, out, config: RLConfig, steps: int = 80, lr: float = 1e-4, eval_every: int = 10,
           resume: bool = False, log: Callable[[str], None] = print, max_minutes: float | None = None) -> dict:
    """从 start 出发做 steps 步 GRPO（给了 max_minutes 时也到时就停）；每 eval_every 步考一次。
    resume=True 时从 out/last 接着训练。"""
    task, out = get_task(config.task), Path(out)
    model, tokenizer, _ = load_model(start, announce=False)
    if config.max_new_tokens == 0:  # 自动：会打草稿、调用工具的模型回答长得多
        config = replace(config, max_new_tokens=REPLY_TOKENS if thinks_or_calls(tokenizer) else 24)
    reference = frozen_copy(start)
    loader = RolloutBatches(model, tokenizer, task, config)
    objective = GRPOObjective(reference, config)
    settings = {**trainer_config(steps, lr, loader.batch_size, model.config.max_len, config.seed),
                "max_minutes": max_minutes}
    trainer = TransformerTrainer(model.train(), loader, "cpu", settings, tokenizer=tokenizer, out_dir=out,
                                 progress=False, log=log, objective=objective)
    trainer.run_info = {"rl": {"start": str(resolve_checkpoint(start)), **config.to_dict()}}
    first = take_scores(model, tokenizer, task, with_sums=True) if not resume else None
    clock = Clock()

    def exam(tr: TransformerTrainer, entry: dict) -> tuple[dict, str]:
        scores = take_scores(tr.model, tokenizer, task)
        return scores.numbers(), (
            f"奖励 (reward) {entry['reward']:.2f} · KL {entry['kl']:.4f} · 回答长度 {entry['length']:.1f} · {scores.line()}")

    trainer.on_step = exam_hook({"heldout_acc": first.heldout, "chat_acc": first.chat} if first else None,
                                lambda: {**loader.last_stats, **objective.last}, exam, eval_every, steps, clock, log)
    resume_or_start(trainer, out, resume, log)
    if first is not None:
        log(f"起点 (start) {start}: {first.line()}")
    trainer.train()
    final = take_scores(model, tokenizer, task, with_sums=True)
    plot_metric_panels(trainer.history, out / "curves.png", [
        ("reward", "平均奖励 (mean reward)"), ("heldout_acc", "留出题答对 (held-out exact)"),
        ("kl", "KL(π‖π_ref)"), ("length", "回答长度 (reply tokens)")])
    summary = {"task": config.task, "steps": trainer.step, "rl": config.to_dict(), "lr": lr,
               "before": first.__dict__ if first else None, "after": final.__dict__, **clock.seconds()}
    write_summary(out, summary)
    log(f"完成 (done): {final.line()} · {clock.text()} · 曲线 {out / 'curves.png'}")
    return summary


# ===== 3. 偏好微调 (DPO) =====
def load_preferences(pairs: str, task_name: str, seed: int, count: int = 2000) -> tuple[list[Pair], list[Pair]]:
    """"builtin" → 任务的内置偏好（训练题与留出题各出一份）；否则读 JSONL 文件，按提示的哈希留出约 10%。"""
    task = get_task(task_name)
    if pairs == "builtin":
        return builtin_pairs(task.train_problems(count, seed), seed), builtin_pairs(task.heldout_problems(200), seed + 1)
    items = read_pairs(pairs)
    heldout = [p for p in items if stable_percent(p.prompt) < 10]
    train = [p for p in items if stable_percent(p.prompt) >= 10]
    return (train, heldout) if heldout and train else (items, items)


def run_dpo(start, out, pairs: str = "builtin", task_name: str = "add3", beta: float = 0.1, steps: int = 60,
            lr: float = 1e-4, batch_size: int = 16, eval_every: int = 10, seed: int = 0, resume: bool = False,
            log: Callable[[str], None] = print, sft_weight: float = 0.0, max_minutes: float | None = None) -> dict:
    """从 start 出发在偏好对上做 steps 步 DPO；每 eval_every 步在留出的偏好对上算偏好准确率。

    sft_weight > 0 时损失再加 sft_weight × chosen 的 SFT 损失（见 dpo.DPOObjective）。"""
    task, out = get_task(task_name), Path(out)
    train_pairs, heldout_pairs = load_preferences(pairs, task_name, seed)
    if batch_size < 1:
        raise StudyGPTError(f"--batch-size {batch_size} 必须 ≥ 1。")
    if len(train_pairs) < batch_size:  # PairBatches 丢掉不满一批的尾巴：一批也凑不满，每个 epoch 就一步也走不了
        raise StudyGPTError(f"训练用的偏好对（按提示留出约 10% 做考试之后）只有 {len(train_pairs)} 条，少于一批 {batch_size} 条："
                            f"请给更多偏好对，或用 --batch-size {len(train_pairs)}。")
    model, tokenizer, _ = load_model(start, announce=False)
    reference = frozen_copy(start)
    loader = PairBatches(train_pairs, tokenizer, reference, batch_size, seed)
    objective = DPOObjective(beta, sft_weight)
    settings = {**trainer_config(steps, lr, batch_size, model.config.max_len, seed), "max_minutes": max_minutes}
    trainer = TransformerTrainer(model.train(), loader, "cpu", settings, tokenizer=tokenizer, out_dir=out,
                                 progress=False, log=log, objective=objective)
    trainer.run_info = {"dpo": {"start": str(resolve_checkpoint(start)), "pairs": pairs, "beta": beta,
                                "sft_weight": sft_weight, "task": task_name}}
    log(f"偏好对 (pairs): 训练 {len(train_pairs)} · 留出 {len(heldout_pairs)}")

    def held() -> dict:
        return evaluate_preferences(model, reference, heldout_pairs, tokenizer, beta)

    first = (held(), take_scores(model, tokenizer, task)) if not resume else None
    clock = Clock()

    def exam(tr: TransformerTrainer, entry: dict) -> tuple[dict, str]:
        h = {f"heldout_{k}": v for k, v in held().items()}
        return h, (f"留出偏好准确率 (held-out pref acc) {h['heldout_pref_acc']:.1%} · margin {h['heldout_margin']:.2f} · "
                   f"log π 变化 chosen {h['heldout_chosen_shift']:+.2f} / rejected {h['heldout_rejected_shift']:+.2f}")

    trainer.on_step = exam_hook({f"heldout_{k}": v for k, v in first[0].items()} if first else None,
                                lambda: {f"train_{k}": v for k, v in objective.last.items()}, exam, eval_every, steps,
                                clock, log)
    resume_or_start(trainer, out, resume, log)
    if first is not None:
        log(f"起点 (start): 留出偏好准确率 {first[0]['pref_acc']:.1%} · loss {first[0]['loss']:.3f} · {first[1].line()}")
    trainer.train()
    after_prefs, after = held(), take_scores(model, tokenizer, task)
    plot_metric_panels(trainer.history, out / "curves.png", [
        ("train_loss", "DPO 损失 (train loss)"), ("heldout_margin", "留出 margin"),
        ("heldout_pref_acc", "留出偏好准确率 (held-out pref acc)"),
        ("heldout_chosen_shift", "chosen 的 log π − log π_ref")])
    summary = {"pairs": pairs, "beta": beta, "sft_weight": sft_weight, "steps": trainer.step, "lr": lr,
               "before": {"prefs": first[0], "scores": first[1].__dict__} if first else None,
               "after": {"prefs": after_prefs, "scores": after.__dict__}, **clock.seconds()}
    write_summary(out, summary)
    log(f"完成 (done): 留出偏好准确率 {after_prefs['pref_acc']:.1%} · margin {after_prefs['margin']:.2f} · "
        f"log π 变化 chosen {after_prefs['chosen_shift']:+.2f} / rejected {after_prefs['rejected_shift']:+.2f} · "
        f"{after.line()} · {clock.text()}")
    return summary


