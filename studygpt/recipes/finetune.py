"""LoRA 微调 (fine-tuning)：在训练好的模型上装低秩适配器，只训练适配器，用的还是同一个训练循环。

    studygpt finetune RUN --data new.conv --lora-rank 8 [--lora-alpha 16] --out RUN2 [--merge]
    studygpt finetune RUN --example persona --out RUN2 --merge     内置例子：给快速上手的模型换一个身份

    ===== 1. 底座模型 =====   load_model(RUN)：权重、配置、分词器
    ===== 2. 数据 =====       用底座的分词器渲染、打包（与 `studygpt train` 相同）
    ===== 3. 装上适配器 =====  lora.add_lora：底座全部冻结，只有 A、B 可训练；打印可训练参数的占比
    ===== 4. 训练 =====       TransformerTrainer：优化器只收 requires_grad 的参数，循环、验证、检查点都不变
    ===== 5. 保存 =====       RUN2/adapter/（只有适配器）；RUN2/last/ 是能直接聊天的检查点：
                              --merge 时适配器已合并进权重，是一个普通模型（chat / serve / export 照常用）；
                              否则是底座 + 适配器，config.json 里的 "lora" 让 load_model 先装上适配器再读权重
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.corpus.builtin import builtin_conv_path, builtin_corpus
from studygpt.corpus.read import read_dialogues, split_validation
from studygpt.errors import StudyGPTError
from studygpt.evaluation.exam import (
    ExamResult,
    Question,
    addition_questions,
    chat_questions,
    take_exam,
)
from studygpt.hardware import pick_device
from studygpt.model.checkpoint import load_model, resolve_checkpoint, save_checkpoint
from studygpt.model.lora import (
    LoRAConfig,
    add_lora,
    merge_lora,
    save_adapter,
    trainable_share,
)
from studygpt.tokenizer.specials import PAD
from studygpt.training.optim import TrainConfig
from studygpt.training.trainer import TransformerTrainer

PERSONA_NAME = "小星"
PERSONA_CONV = builtin_conv_path().with_name("persona_zh.conv")  # 32 段：新名字与自我介绍（含 StudyGPT 这个出身）
# 训练里没有出现过的问法：考它学到的是"我是小星"，还是只背下了那 32 句问话
PERSONA_HELDOUT = ("你是谁啊？", "请问你叫什么名字？", "能介绍一下你自己吗？", "你的名字叫什么？", "我应该怎么称呼你？",
                   "嗨，你是谁？", "你好，你叫什么？", "跟我说说你是谁", "你是哪个模型？", "你好啊")
PERSONA_REPEAT = 8   # 新身份的 32 段对话重复几遍：少了学不会，多了就只会说这几句
ADDITION_MIX = 1500  # 混进多少段原来的加法训练题：只练新身份，模型会慢慢忘掉别的（灾难性遗忘 catastrophic forgetting）
PERSONA_STEPS = 120  # 内置例子按步数训练，每台机器结果相同；空闲的 2 核 CPU 上约一分钟


@dataclass
class FinetuneResult:
    out: Path
    trainable: int = 0
    total: int = 0
    summary: dict = field(default_factory=dict)
    exams: dict = field(default_factory=dict)  # {"before"|"after": {考试名: ExamResult}}（只有内置例子才考）


def persona_data(seed: int = 0) -> list:
    """内置例子的训练数据：新身份的 32 段对话 ×PERSONA_REPEAT，再混进快速上手的自写语料（去掉旧的自我介绍）和一些加法题，
    让模型在学新名字的同时复习原来会的东西。"""
    persona, _ = read_dialogues(PERSONA_CONV)
    corpus = builtin_corpus(seed=seed)  # 与快速上手同一个种子：加法的留出题不会混进训练
    # 去掉与新身份矛盾的旧对话：问的是新身份教的问题，或回答里是旧的自我介绍
    asked = {d[0] for d in persona}
    old_identity = ("我是StudyGPT", "我叫StudyGPT")
    keep = [d for d in corpus.own if d[0] not in asked and not any(s in t for t in d for s in old_identity)]
    return persona * PERSONA_REPEAT + keep + corpus.addition_train[:ADDITION_MIX]


def persona_exams(model, tokenizer, seed: int = 0) -> dict[str, ExamResult]:
    """内置例子的四场考试：新身份（训练过的问法 / 没见过的问法）、快速上手的 20 个固定问题、留出的加法题。"""
    persona, _ = read_dialogues(PERSONA_CONV)
    new_identity = [Question(d[0], (PERSONA_NAME,)) for d in persona]
    heldout = [Question(q, (PERSONA_NAME,)) for q in PERSONA_HELDOUT]
    sums = addition_questions(builtin_corpus(seed=seed).addition_heldout)
    return {"persona": take_exam(model, tokenizer, new_identity), "persona_heldout": take_exam(model, tokenizer, heldout),
            "chat": take_exam(model, tokenizer, chat_questions()),
            "addition": take_exam(model, tokenizer, sums, max_length=24)}


def kept(before: ExamResult, after: ExamResult) -> str:
    """微调前答对的题里，微调后还答对的比例（"没有忘掉"）。"""
    right = [a for b, a in zip(before.correct, after.correct) if b]
    return f"{sum(right) / len(right):.1%} ({sum(right)}/{len(right)})" if right else "—"


def print_exams(exams: dict[str, dict[str, ExamResult]]) -> None:
    names = {"persona": "新身份 (new persona, 训练过的问法)", "persona_heldout": "新身份 (没见过的问法 held-out)",
             "chat": "快速上手的 20 个固定问题 (fixed prompts)", "addition": "留出的加法题 (held-out sums)"}
    before, after = exams["before"], exams["after"]
    print(f"{'考试 (exam)':<34} {'微调前 (before)':>16} {'微调后 (after)':>16} {'原来对的仍然对 (kept)':>20}")
    for key, name in names.items():
        print(f"{name:<34} {before[key].score():>16} {after[key].score():>16} {kept(before[key], after[key]):>20}")
    print("回答对照 (replies before → after):")
    for kind in ("persona", "persona_heldout", "chat"):
        for q, r0, r1 in list(zip(before[kind].questions, before[kind].replies, after[kind].replies))[:4]:
            print(f"  问: {q.text}\n    前: {r0}\n    后: {r1}")


def finetune(run: str, out: str, data: list[str] | None = None, example: str | None = None, rank: int = 8,
             alpha: float = 16.0, dropout: float = 0.0, merge: bool = False, minutes: float | None = None,
             max_steps: int | None = None, lr: float = 5e-3, batch_size: int = 16, seed: int = 0,
             device: str | None = None, progress: bool = True) -> FinetuneResult:
    """在 RUN 上做 LoRA 微调，结果写到 out。data（语料文件）与 example（内置例子 "persona"）二选一。

    预算：minutes 与 max_steps 都不给时，语料训练 1 分钟，内置例子训练 PERSONA_STEPS 步。
    LoRA 的学习率通常比从零训练高（默认 5e-3）：B 从 0 出发，要在几百步里长到有用的大小。"""
    if bool(data) == bool(example):
        raise StudyGPTError("请给 --data 语料文件，或 --example persona（内置例子），二者选一。")
    if example not in (None, "persona"):
        raise StudyGPTError(f"--example {example!r} 不认识；现在只有 persona（给快速上手的模型换一个身份）。")
    if os.path.realpath(out) == os.path.realpath(run):  # realpath 遇到符号链接环不报错（Path.resolve 会）
        raise StudyGPTError("--out 不能与 RUN 相同：微调不改动底座模型，结果另存一个目录。")
    config = LoRAConfig(rank=rank, alpha=alpha, dropout=dropout)
    if minutes is None and max_steps is None:
        minutes, max_steps = (None, PERSONA_STEPS) if example else (1.0, None)
    result = FinetuneResult(Path(out))

    # ===== 1. 底座模型 =====
    ckpt = resolve_checkpoint(run)
    model, tokenizer, meta = load_model(ckpt, pick_device(device))
    if "lora" in meta:
        raise StudyGPTError(f"{ckpt} 本身带着没合并的 LoRA 适配器；请先用 --merge 得到普通模型，再在它上面微调。")

    # ===== 2. 数据 =====
    if example:
        dialogues = persona_data(seed)
    else:
        dialogues = []
        for path in data:
            part, report = read_dialogues(path)
            print(report.summary())
            dialogues += part
    train, val = split_validation(dialogues, fraction=0.05, seed=seed)
    seq_len = model.config.max_len
    pad = tokenizer.token_id(PAD)
    train_batches = PackedBatches(build_windows(train, tokenizer, seq_len), batch_size, seq_len, pad, seed=seed)
    val_batches = PackedBatches(build_windows(val, tokenizer, seq_len), batch_size, seq_len, pad,
                                shuffle=False, drop_last=False) if val else None
    if len(train_batches) == 0:  # 不满一批的尾巴被丢掉：一批也凑不满，训练就一步也走不了
        raise StudyGPTError(f"微调数据打包后只有 {train_batches.num_rows()} 行（{len(train)} 段训练对话），"
                            f"少于一批 {batch_size} 行：请多给些微调对话。")
    print(f"微调数据 (data): 训练 {len(train)} 段对话，验证 {len(val)} 段")
    if example:
        result.exams["before"] = persona_exams(model, tokenizer, seed)

    # ===== 3. 装上适配器 =====
    add_lora(model, config)
    result.trainable, result.total = trainable_share(model)
    print(f"LoRA rank={rank} alpha={alpha:g}（缩放 alpha/r = {config.scale:g}）装在 {', '.join(config.targets)} 上："
          f"可训练参数 {result.trainable:,} / {result.total:,} = {result.trainable / result.total:.2%}")

    # ===== 4. 训练：同一个 TransformerTrainer =====
    train_config = TrainConfig(lr=lr, max_minutes=minutes, max_steps=max_steps, batch_size=batch_size, seq_len=seq_len,
                               seed=seed, early_stop_patience=0, keep_best=False, eval_points=5)
    trainer = TransformerTrainer(model, train_batches, model.tok_embeddings.weight.device, train_config,
                                 val_loader=val_batches, tokenizer=tokenizer, out_dir=out, progress=progress)
    trainer.run_info = {"lora": dataclasses.asdict(config), "base_model": str(ckpt)}  # 写进 last/config.json
    result.summary = trainer.train()

    # ===== 5. 保存 =====
    save_adapter(model, config, Path(out) / "adapter", base=str(ckpt))
    if merge:
        merge_lora(model)
        extra = {"step": trainer.step, "base_model": str(ckpt), "merged_lora": dataclasses.asdict(config)}
        save_checkpoint(Path(out) / "last", model, tokenizer, train_config.to_dict(), extra=extra)
    model.eval()
    print(f"已保存 (saved): {out}/adapter（只有适配器）· {out}/last（{'已合并，是普通模型' if merge else '底座 + 适配器'}）"
          f"  ·  聊天：studygpt chat {out}")
    if example:
        result.exams["after"] = persona_exams(model, tokenizer, seed)
        print_exams(result.exams)
    return result
