"""快速上手 (quick start)：从零开始，几分钟内在 CPU 上训练出一个能聊天的中文小模型。

    ===== 1. 读语料 =====      内置语料：自写对话 + chatterbot-corpus 中文 + 两位数加法（留出一部分）
    ===== 2. 建词表 =====      看一个例子怎样变成词元、哪些词元被学习
    ===== 3. 建模型 =====      参数都花在哪里
    ===== 4. 训练 =====        进度条；中途几次用同样的问题考它，看乱码怎样变成回答
    ===== 5. 保存与报告 =====  runs/quickstart/：检查点、损失曲线、report.md
    ===== 6. 聊天 =====        终端里直接开始聊；否则打印命令
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from studygpt.corpus.builtin import BuiltinCorpus, builtin_conv_path, builtin_corpus
from studygpt.corpus.chains import chain_dialogues
from studygpt.corpus.read import split_validation
from studygpt.evaluation.exam import (
    ExamResult,
    addition_questions,
    build_conversations,
    chat_questions,
    conversation_exam,
    take_exam,
)
from studygpt.generation.batch_decode import greedy_batch
from studygpt.hardware import describe_machine
from studygpt.plotting import INSTALL_HINT, setup_cjk_font
from studygpt.recipes.presets import get_preset
from studygpt.recipes.report import (
    evaluate_for_report,
    md_table,
    run_sections,
    write_report,
)
from studygpt.recipes.train import RunSpec, build_trainer
from studygpt.tokenizer.chat_format import render_conversation, show_mask

OWN_REPEAT = 6  # 自写语料重复几遍：它最小，却是聊天考试考的内容（5、6、8 遍的对比实测见 README）
SHOW_PROMPTS = ["你好", "你是谁？", "什么是注意力机制？", "23加58等于多少？"]  # 训练中反复考的问题


@dataclass
class QuickstartResult:
    out: Path
    stage_seconds: dict = field(default_factory=dict)
    chat_accuracy: float = 0.0
    addition_accuracy: float = 0.0
    turn_accuracy: list[float] = field(default_factory=list)  # 5 轮对话考试，每个轮次位置的正确率
    summary: dict = field(default_factory=dict)


def stage(title: str) -> None:
    print(f"\n===== {title} =====", flush=True)


def answer_all(model, tokenizer, questions: list[str], max_length: int = 80) -> list[str]:
    """贪心解码 (greedy)，每个问题一条回答：考试要可复现。几百道题成批一起算，快得多。"""
    return greedy_batch(model, tokenizer, questions, max_length=max_length)


BUILTIN_DATA = "<builtin>"  # 运行设置 (RunSpec.data) 里代表"内置语料"的记号：快速上手不读文件


@dataclass
class QuickstartData:
    """快速上手的语料：内置语料本身、串好的训练对话、验证对话（chatterbot 留出 val_chat 段 + 留出的加法题）。"""
    corpus: BuiltinCorpus
    train: list
    val: list
    val_chat: int


def quickstart_data(seed: int = 0, preset: str = "tiny") -> QuickstartData:
    """读内置语料，留出验证集，把训练对话串成多轮链。同一个 seed 给出同样的数据（break-it 实验靠这一点）。"""
    corpus = builtin_corpus(seed=seed)
    train_chat, val_chat = split_validation(corpus.chatterbot, fraction=0.05, seed=seed)
    # 自写语料最小却最要紧，重复 OWN_REPEAT 遍；再随机串成 1–5 段一条的多轮链（见 corpus/chains.py），
    # 模型于是见过"前面聊了别的，现在只答最新的问题"。一条链不超过一个训练窗口 (seq_len)。
    seq_len = get_preset(preset)["train"]["seq_len"]
    train = chain_dialogues(corpus.own * OWN_REPEAT + train_chat + corpus.addition_train, max_tokens=seq_len, seed=seed)
    val = val_chat + [[q, a] for q, a in corpus.addition_heldout[:200]]
    return QuickstartData(corpus, train, val, len(val_chat))


def quickstart_spec(out: str | Path, preset: str = "tiny", seed: int = 0, minutes: float | None = 3.0,
                    max_steps: int | None = None, **spec) -> RunSpec:
    """快速上手的运行设置。minutes=None 时只按步数 (max_steps) 训练：结果与机器快慢无关。
    spec：RunSpec 的其他字段（device、tokenizer、threads……）。"""
    # 不早停：3 分钟的课要走完整个学习率调度，第 9 章正是用这条曲线讲过拟合。
    # 不另存 best/：考试考的技能（加法、多轮）在验证损失见底之后还在进步，
    # 所以考试、报告和 `studygpt chat` 用的都是训练结束时的同一个模型 (last/)
    return RunSpec(data=[BUILTIN_DATA], out=str(out), preset=preset,
                   train={"seed": seed, "max_minutes": minutes, "max_steps": max_steps, "eval_batches": 20,
                          "early_stop_patience": 0, "keep_best": False}, **spec)


def quickstart_exams(model, tokenizer, corpus: BuiltinCorpus) -> dict[str, ExamResult]:
    """快速上手的两场单轮考试（贪心解码）：20 个固定聊天问题 (chat)，全部留出的两位数加法 (addition)。"""
    return {"chat": take_exam(model, tokenizer, chat_questions()),
            "addition": take_exam(model, tokenizer, addition_questions(corpus.addition_heldout), max_length=24)}


def run_quickstart(out: str = "runs/quickstart", minutes: float = 3.0, preset: str = "tiny", seed: int = 0,
                   max_steps: int | None = None, device: str | None = None, chat: bool = True,
                   progress: bool = True, exam_conversations: int = 100, tokenizer: str | None = None,
                   threads: int | None = None) -> QuickstartResult:
    """整个快速上手。exam_conversations：多轮考试考多少段 5 轮对话（测试里用几段就够）；
    tokenizer：现成的分词器目录（如字节级 BPE，见第 12 章），不给时按语料建字符级词表；
    threads：CPU 线程数，不给时实测（别的程序占着 CPU 时自动少用几个，见 hardware.set_threads）。"""
    result = QuickstartResult(Path(out))
    clock = time.perf_counter()
    t_start = clock

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.stage_seconds[name] = now - clock
        clock = now

    # ===== 1. 读语料 =====
    stage("1. 读语料 (read the corpus)")
    data = quickstart_data(seed, preset)
    corpus, train, val = data.corpus, data.train, data.val
    chars = sum(len(t) for d in train for t in d)
    print(f"内置语料 {builtin_conv_path().name}: {len(corpus.own)} 段自写对话 · chatterbot-corpus 中文 "
          f"{len(corpus.chatterbot)} 段 · 加法 {len(corpus.addition_train)} 段训练 / "
          f"{len(corpus.addition_heldout)} 题留出（模型从没见过）")
    print(f"训练集 (train): 串成 {len(train):,} 段多轮对话, {chars:,} 个字符; 验证集 (val): {len(val)} 段"
          f"（chatterbot 留出 {data.val_chat} 段 + 留出的加法题 {len(val) - data.val_chat} 道）")
    lap("读语料 (corpus)")

    # ===== 2. 建词表，看一个例子 =====
    stage("2. 建词表 (build the vocabulary)")
    spec = quickstart_spec(out, preset, seed, minutes, max_steps, device=device, tokenizer=tokenizer, threads=threads)
    trainer = build_trainer(spec, train, val, progress=progress, on_step=None, auto_threads=True)
    tokenizer, model = trainer.tokenizer, trainer.model
    example = next(d for d in corpus.own if len(d) >= 4)  # 挑一段多轮对话
    ids, labels = render_conversation(example, tokenizer)
    print(f"词表大小 (vocab size): {tokenizer.vocab_size}（{tokenizer.describe()}）")
    print("一个多轮例子，方括号里的词元参与损失（只学助手的回答和它的 <|end|>）：")
    print("  " + show_mask(ids, labels, tokenizer, color=sys.stdout.isatty()))
    lap("建词表 (vocab)")

    # ===== 3. 模型 =====
    stage("3. 建模型 (the model)")
    c = model.config
    print(f"d_model={c.d_model} · n_head={c.n_head} · n_layers={c.n_layers} · max_len={c.max_len} · "
          f"精度 {trainer.precision.name}（{trainer.precision.reason}）")
    for name, n in model.param_breakdown():
        print(f"  {name:<40} {n:>10,}")
    lap("建模型 (model)")

    # ===== 4. 训练 =====
    budget = f"{minutes:g} 分钟" if max_steps is None else f"最多 {max_steps} 步或 {minutes:g} 分钟"
    stage(f"4. 训练 (train)：{budget}，机器：{describe_machine()}")
    checkpoints = [0.25, 0.5, 0.75]
    samples: list[tuple[str, list[str]]] = []

    def show_samples(tr) -> None:
        elapsed = time.perf_counter() - train_start
        frac = tr.progress_fraction(elapsed)
        if checkpoints and frac >= checkpoints[0]:
            checkpoints.pop(0)
            replies = answer_all(tr.model, tokenizer, SHOW_PROMPTS)
            samples.append((f"第 {tr.step} 步 ({elapsed:.0f} 秒)", replies))
            tr.validate_and_save(elapsed)  # 验证损失也画进曲线，并存一份 last 检查点
            tr.log(f"\n  —— 第 {tr.step} 步，{elapsed:.0f} 秒，考一考 ——")
            for q, r in zip(SHOW_PROMPTS, replies):
                tr.log(f"  问: {q}  答: {r}")

    trainer.on_step = show_samples
    train_start = time.perf_counter()
    result.summary = trainer.train()
    lap("训练 (train)")

    # ===== 5. 保存与报告 =====
    stage("5. 保存与报告 (save and report)")
    model.eval()
    final = answer_all(model, tokenizer, SHOW_PROMPTS)
    samples.append((f"训练结束，第 {trainer.step} 步", final))
    exams = quickstart_exams(model, tokenizer, corpus)
    conversations = build_conversations([chat_questions(), addition_questions(corpus.addition_heldout)],
                                        count=exam_conversations, seed=seed)
    turns = conversation_exam(model, tokenizer, conversations)
    result.chat_accuracy, result.addition_accuracy = exams["chat"].accuracy, exams["addition"].accuracy
    result.turn_accuracy = [t.accuracy for t in turns]
    print(f"固定的聊天问题答对 {exams['chat'].score()}；留出的加法题答对 {exams['addition'].score()}")
    print(f"{len(conversations)} 段 {len(turns)} 轮对话（聊天问题与留出加法题随机混合，历史里是模型自己的回答），"
          "每轮答对：" + " · ".join(f"第 {k} 轮 {t.accuracy:.1%}" for k, t in enumerate(turns, 1)))
    lap("考试 (exams)")
    metrics = evaluate_for_report(trainer, val)
    lap("报告指标 (report metrics)")
    result.stage_seconds["合计 (total)"] = time.perf_counter() - t_start
    sections = quickstart_sections(result, samples, exams, turns)
    general = run_sections(trainer, result.summary, metrics, trainer.data_stats)
    report = write_report(out, "快速上手报告 (quick-start report)", general[:1] + sections + general[1:])
    print(f"已保存 (saved): {out}/last（检查点） · {out}/loss_curve.png · {report}")
    if setup_cjk_font() is None:  # 快速上手的图不写汉字，但课程里的注意力图等要用：现在就说，并指向体检
        print(f"{INSTALL_HINT}这台机器还缺什么，一次查完：studygpt doctor")

    # ===== 6. 聊天 =====
    stage("6. 聊天 (chat)")
    if chat and sys.stdin.isatty():
        from studygpt.generation.chat import chat_loop
        from studygpt.generation.generate import GenerationSettings
        chat_loop(model, tokenizer, GenerationSettings())
    else:
        print(f"开始聊天 (start chatting): studygpt chat {out}")
    return result


def quickstart_sections(result: QuickstartResult, samples, exams: dict[str, ExamResult],
                        turns: list[ExamResult]) -> list[str]:
    """快速上手特有的报告段落：三场考试的成绩、各阶段耗时、训练过程中的回答、答错的题。"""
    chat, addition = exams["chat"], exams["addition"]
    wrong_sums = [(q.text, q.expect[0], r) for q, r, ok in zip(addition.questions, addition.replies, addition.correct)
                  if not ok]
    wrong_turns = [(k, q.text, r) for k, t in enumerate(turns, 1)
                   for q, r, ok in zip(t.questions, t.replies, t.correct) if not ok]
    return [
        "## 成绩 (scores)",
        md_table(["考试 (exam)", "结果"], [
            ["固定的聊天问题 (fixed chat prompts, greedy)", chat.score()],
            ["留出的两位数加法 (held-out addition, greedy, exact match)", addition.score()]]
            + [[f"{len(turns)} 轮对话的第 {k} 轮 (turn {k} of {len(turns)}-turn conversations)", t.score()]
               for k, t in enumerate(turns, 1)]),
        f"{len(turns)} 轮对话：每轮等概率出一道固定聊天问题或一道留出的加法题，历史里放的是模型自己前几轮的回答，"
        "与 `studygpt chat` 一样，放不下时从最早的一问一答丢起。",
        "## 耗时 (time per stage)",
        md_table(["阶段 (stage)", "秒 (s)"], [[k, f"{v:.1f}"] for k, v in result.stage_seconds.items()]),
        "## 训练过程中的回答 (replies during training, greedy)",
        md_table(["时刻"] + SHOW_PROMPTS, [[when] + replies for when, replies in samples]),
        "## 固定聊天问题 (fixed chat prompts)",
        md_table(["问题", "回答", "对吗"], [[q.text, r, "✓" if ok else "✗"]
                                       for q, r, ok in zip(chat.questions, chat.replies, chat.correct)]),
        "## 答错的加法题 (wrong held-out sums, first 20)",
        md_table(["问题", "标准答案", "回答"], [list(x) for x in wrong_sums[:20]]) if wrong_sums else "全部答对 (all correct)。",
        "## 多轮对话里答错的题 (wrong answers in conversations, first 20)",
        md_table(["轮次", "问题", "回答"], [list(x) for x in wrong_turns[:20]]) if wrong_turns else "全部答对 (all correct)。",
    ]
