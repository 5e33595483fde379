"""评估 (evaluation)：训练中的验证与 `studygpt eval` 用的是同一份代码；最后汇成一张成绩单 (report card)。

在数据上（只在助手的回答上算，用户的话不是模型要学的）：
- loss：每个词元的平均交叉熵（单位 nat）；
- 困惑度 perplexity = e^loss：模型平均在多少个候选之间犹豫；
- 每字符比特数 bits per character (bpc) = 总损失 / (ln2 · 字符数)：与词表无关，
  所以字符级和以后的子词 (sub-word) 分词器可以公平比较；
- `<unk>` 比例 (unk rate)：数据里有多少字符不在这个词表里（模型根本看不到它们）。

在固定提示上生成的回答（corpus/eval_prompts.json，固定随机种子，所以两次评估可以直接比）：
- 回答长度 (reply chars)、distinct-1/2（多样性）、3-gram 重复率 (repetition)、
  以 <|end|> 结束的比例 (end rate：模型学会了"何时停下"吗)。
"""
from __future__ import annotations

import unicodedata
from dataclasses import asdict
from typing import Sequence

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.corpus.builtin import load_eval_prompts
from studygpt.errors import StudyGPTError
from studygpt.generation.generate import (
    GenerationSettings,
    SamplingConfig,
    generate_tokens,
    prompt_budget,
)
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import fit_prompt
from studygpt.tokenizer.specials import CONTROL_TOKENS, END, PAD, UNK
from studygpt.training.validation import evaluate_loss

EVAL_SEEDS = (0, 1, 2)  # 固定的随机种子：同一个模型每次评估得到同样的回答
EVAL_SETTINGS = GenerationSettings(SamplingConfig(temperature=0.7, top_k=50), max_length=64)  # 种子用 EVAL_SEEDS
UNK_CHAR = "\ufffd"  # 回答里的 <unk> 记作一个替换字符 �：它代表一个未知字符，长度算 1


def unk_rate(dialogues: Sequence[Sequence[str]], tokenizer: Tokenizer) -> float:
    """数据里编码成 <unk> 的字符占全部字符的比例（用户和助手的话都算）。

    入: 对话列表 [[用户, 助手, ...], ...]；出: [0, 1] 之间的数，没有字符时为 0。
    字符级分词器一个字符对应一个词元，所以"字符数" = 编码后的词元数。
    """
    unk_id = tokenizer.token_id(UNK)
    unknown = total = 0
    for turns in dialogues:
        for text in turns:
            ids = tokenizer.encode_array(text)
            unknown += int((ids == unk_id).sum())
            total += len(ids)
    return unknown / max(total, 1)


def data_metrics(model: DialogueModel, tokenizer: Tokenizer, dialogues: Sequence[Sequence[str]],
                 batch_size: int = 8) -> dict:
    """整份数据上的 evaluate_loss（按顺序、最后不满的批次也算）再加上 <unk> 比例。

    出: dict(loss, perplexity, bpc, tokens, chars, unk_rate, dialogues)。
    """
    if not dialogues:
        raise StudyGPTError("没有可评估的对话 (no dialogues)：请给出至少含一问一答的数据文件。")
    max_len = model.config.max_len
    windows = build_windows(dialogues, tokenizer, max_len)
    batches = PackedBatches(windows, batch_size, max_len, tokenizer.token_id(PAD), shuffle=False, drop_last=False)
    return {**evaluate_loss(model, batches, tokenizer), "unk_rate": unk_rate(dialogues, tokenizer),
            "dialogues": len(dialogues)}


# ===== 2. 纯文本指标 (text metrics)：只看回答的文字，不看模型 =====
def char_ngrams(text: str, n: int) -> list[str]:
    """字符 n-gram：char_ngrams("你好呀", 2) → ["你好", "好呀"]；文字短于 n 时为空列表。"""
    return [text[i:i + n] for i in range(len(text) - n + 1)]


def distinct_n(replies: Sequence[str], n: int) -> float:
    """distinct-n = 所有回答里不同的 n-gram 数 / n-gram 总数（n-gram 不跨回答）。

    越接近 1 越多样；模型总说同一句话时趋近 0。没有任何 n-gram 时为 0。
    例：["abab", "ab"] 的 1-gram 有 6 个、2 种 → distinct-1 = 1/3。
    """
    grams = [g for reply in replies for g in char_ngrams(reply, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(replies: Sequence[str], n: int = 3) -> float:
    """一条回答内部的重复：每条回答算 1 − 不同的 n-gram 数 / n-gram 总数，再对回答取平均。

    短于 n 个字的回答没有 n-gram，不参与平均；一条都没有时为 0。
    例 (n=3)："哈哈哈哈" 有 2 个 3-gram、1 种 → 0.5；"你好呀" → 0。越低越好。
    """
    rates = []
    for reply in replies:
        grams = char_ngrams(reply, n)
        if grams:
            rates.append(1 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else 0.0


def reply_metrics(replies: Sequence[dict]) -> dict:
    """generate_replies 的结果 → dict(reply_chars, distinct_1, distinct_2, repetition_3, end_rate)。

    reply_chars：平均每条回答多少字；end_rate：以 <|end|> 结束（而不是写到长度上限被截断）的比例。
    """
    texts = [r["reply"] for r in replies]
    return {"reply_chars": sum(map(len, texts)) / max(len(texts), 1),
            "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "repetition_3": repetition_rate(texts, 3),
            "end_rate": sum(r["ended"] for r in replies) / max(len(replies), 1)}


# ===== 3. 在固定提示上生成 (replies to the fixed prompts) =====
def generate_replies(model: DialogueModel, tokenizer: Tokenizer, prompts: Sequence[dict], seeds: Sequence[int],
                     max_new_tokens: int, cfg: SamplingConfig) -> list[dict]:
    """每个提示 × 每个种子生成一条回答。

    入: prompts [{"prompt": str, "history": [用户, 助手, ...]（可省）, ...}]。
    出: [{"prompt", "history", "seed", "reply", "ended"}]，reply 里的 <unk> 记作 U+FFFD；
        ended：最后一个词元是 <|end|>，即模型自己停下，而不是写满 max_new_tokens 或上下文。
    """
    end_id = tokenizer.token_id(END)
    budget = prompt_budget(model.config.max_len, max_new_tokens)  # 与聊天一样给回答留位置
    out = []
    for item in prompts:
        history = list(item.get("history", []))
        prompt_ids = fit_prompt(tokenizer, history, item["prompt"], budget)
        for seed in seeds:
            steps = list(generate_tokens(model, prompt_ids, max_new_tokens, cfg, tokenizer, seed=seed))
            # 特殊词元不是文字（<|end|> 只说明停下了）；<unk> 例外，记作一个未知字符
            reply = "".join(UNK_CHAR if s.text == UNK else s.text for s in steps
                            if s.text == UNK or s.text not in CONTROL_TOKENS)
            out.append({"prompt": item["prompt"], "history": history, "seed": seed, "reply": reply,
                        "ended": bool(steps) and steps[-1].token_id == end_id})
    return out


# ===== 4. 成绩单 (the report card) =====
def evaluate_model(model: DialogueModel, tokenizer: Tokenizer, dialogues: Sequence[Sequence[str]] | None = None,
                   prompts: Sequence[dict] | None = None, seeds: Sequence[int] = EVAL_SEEDS,
                   max_new_tokens: int = EVAL_SETTINGS.max_length, sampling: SamplingConfig | None = None,
                   batch_size: int = 8) -> dict:
    """一个模型的全部指标。`studygpt eval` 与快速上手的 report.md 都调用它。

    入: dialogues 为 None 时不算数据上的指标；prompts 为 None 时用内置的 30 个固定提示，[] 表示不生成；
        sampling 默认 EVAL_SETTINGS.sampling（temperature 0.7、top_k 50）。
    出: 平铺的 dict：loss, perplexity, bpc, tokens, chars, unk_rate, dialogues（有数据时）；
        reply_chars, distinct_1, distinct_2, repetition_3, end_rate, sampling, replies（有提示时）。
    """
    result: dict = {}
    if dialogues is not None:
        result.update(data_metrics(model, tokenizer, dialogues, batch_size))
    prompts = load_eval_prompts() if prompts is None else prompts
    if prompts:
        cfg = sampling or EVAL_SETTINGS.sampling
        replies = generate_replies(model, tokenizer, prompts, seeds, max_new_tokens, cfg)
        result.update(reply_metrics(replies))
        result["sampling"] = {**asdict(cfg), "seeds": list(seeds), "max_new_tokens": max_new_tokens,
                              "prompts": len(prompts)}
        result["replies"] = replies
    return result


# (键 key, 显示的名字, 格式)：↓ 越低越好，↑ 越高越好；百分数的差 Δ 是百分点
TABLE_ROWS = [
    ("loss", "loss ↓", "{:.3f}"),
    ("perplexity", "困惑度 perplexity ↓", "{:.2f}"),
    ("bpc", "每字符比特 bits/char ↓", "{:.3f}"),
    ("unk_rate", "<unk> 比例 unk rate ↓", "{:.2%}"),
    ("reply_chars", "回答长度 reply chars", "{:.1f}"),
    ("distinct_1", "distinct-1 ↑", "{:.3f}"),
    ("distinct_2", "distinct-2 ↑", "{:.3f}"),
    ("repetition_3", "3-gram 重复率 repetition ↓", "{:.3f}"),
    ("end_rate", "自己停下 ends with end ↑", "{:.1%}"),
]


def display_width(text: str) -> int:
    """终端里的显示宽度：中文等全角字符占两格，这样表格在终端里也能对齐。"""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad_to_width(text: str, width: int, right: bool) -> str:
    space = " " * (width - display_width(text))
    return space + text if right else text + space


def format_table(results: dict[str, dict], rows: Sequence[tuple[str, str, str]] = TABLE_ROWS) -> str:
    """{名字: evaluate_model 的结果} → Markdown 表格（终端里也对齐），每个模型一列。

    rows：要显示哪些行 [(键, 名字, 格式)]，默认 TABLE_ROWS；有参考答案的指标用 references.REFERENCE_ROWS。
    正好两个模型时多一列 Δ = 第二个 − 第一个。缺的指标写 "—"；所有结果都没有的指标整行不出现。
    """
    names = list(results)
    delta = len(names) == 2
    header = ["指标 (metric)"] + [n.replace("|", "\\|") for n in names] + (["Δ"] if delta else [])
    table = [header]
    for key, label, fmt in rows:
        values = [results[n].get(key) for n in names]
        if all(v is None for v in values):
            continue
        row = [label] + ["—" if v is None else fmt.format(v) for v in values]
        if delta:
            a, b = values
            row.append("—" if a is None or b is None else fmt.replace("{:", "{:+").format(b - a))
        table.append(row)
    widths = [max(display_width(r[c]) for r in table) for c in range(len(header))]
    lines = ["| " + " | ".join(pad_to_width(cell, w, right=c > 0) for c, (cell, w) in enumerate(zip(r, widths))) + " |"
             for r in table]
    # 分隔行里的 ---: 让 Markdown 把数字列右对齐
    rule = "|" + "|".join("-" * (w + 1) + (":" if c else "-") for c, w in enumerate(widths)) + "|"
    return "\n".join([lines[0], rule] + lines[1:])
