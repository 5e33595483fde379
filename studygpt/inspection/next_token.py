"""看看里面之二：下一个词元的前 k 名与概率，逐步贪心往下写；温度 / top-k / top-p / 重复惩罚怎样改变分布。

`studygpt inspect next RUN TEXT`。只读模型，不改它。
"""
from __future__ import annotations

from typing import Sequence

import torch

from studygpt.errors import StudyGPTError
from studygpt.evaluation.metrics import pad_to_width
from studygpt.generation.generate import (
    SamplingConfig,
    decode_one_token,
    prefill,
    process_logits,
)
from studygpt.inspection.tokens import show_token
from studygpt.model.kv_cache import KVCache
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import fit_prompt
from studygpt.tokenizer.specials import END

# ===== 2. 下一个词元的概率 (next-token probabilities) =====
# 同一个分布在不同采样设置下的样子；重复惩罚只惩罚"回答里已经写出的字"（与 generate.py 相同）
SETTINGS: list[tuple[str, SamplingConfig]] = [
    ("T=0.5", SamplingConfig(temperature=0.5)), ("T=1", SamplingConfig(temperature=1.0)),
    ("T=1.5", SamplingConfig(temperature=1.5)), ("top_k=5", SamplingConfig(temperature=1.0, top_k=5)),
    ("top_p=0.9", SamplingConfig(temperature=1.0, top_p=0.9)),
    ("rep=1.3", SamplingConfig(temperature=1.0, repetition_penalty=1.3)),
]


def _bar(p: float, width: int = 20) -> str:
    return "█" * round(p * width)


def _top_table(probs: torch.Tensor, tokenizer: Tokenizer, top: int) -> list[str]:
    """概率 (V,) → 前 top 名的几行：排名、词元、概率、长条。"""
    p, idx = probs.topk(min(top, probs.numel()))
    return [f"  {rank:>3}  {pad_to_width(show_token(tokenizer.id_to_token[i]), 7, right=False)} {q:7.2%}  {_bar(q)}".rstrip()
            for rank, (q, i) in enumerate(zip(p.tolist(), idx.tolist()), start=1)]


def settings_table(logits: torch.Tensor, previous: Sequence[int], tokenizer: Tokenizer, top: int = 10,
                   settings: Sequence[tuple[str, SamplingConfig]] = SETTINGS) -> list[str]:
    """同一行 logits (V,) 经 process_logits 在每种设置下变成的概率：每种设置一列，前 top 个词元各一行。

    最后两行：其余词元的概率之和 (rest)，和还有多少个词元可能被抽到 (kept = 概率 > 0 的个数)。
    """
    columns = [process_logits(logits, cfg, previous).softmax(-1) for _, cfg in settings]
    rows = columns[1].topk(min(top, logits.numel())).indices.tolist()  # 按温度 1 的概率排行
    head = pad_to_width("词元", 10, right=False) + "".join(pad_to_width(name, 10, right=True) for name, _ in settings)
    lines = [head]
    for i in rows:
        cells = "".join(pad_to_width(f"{float(c[i]):.1%}", 10, right=True) for c in columns)
        lines.append(pad_to_width(show_token(tokenizer.id_to_token[i]), 10, right=False) + cells)
    rest = "".join(pad_to_width(f"{max(1 - float(c[rows].sum()), 0.0):.1%}", 10, right=True) for c in columns)
    kept = "".join(pad_to_width(str(int((c > 0).sum())), 10, right=True) for c in columns)
    return lines + [pad_to_width("其余 rest", 10, right=False) + rest, pad_to_width("可选 kept", 10, right=False) + kept]


@torch.no_grad()
def inspect_next(model: DialogueModel, tokenizer: Tokenizer, prompt: str, steps: int = 3, top: int = 10) -> str:
    """对用户输入 prompt，逐步贪心 (greedy) 写 steps 个词元，每步列出温度 1 时概率最高的 top 个候选；
    最后一步的分布再按 SETTINGS 里的每种采样设置各算一遍，并排成一张表。返回要打印的文字。

    用的正是生成时的函数：prefill → decode_one_token（KV 缓存）→ process_logits。
    model 应处于 eval 模式（load_model 给出的就是）。
    """
    if not 1 <= steps <= model.config.max_len // 2 or top < 1:
        raise StudyGPTError(f"--steps={steps} 必须在 1..{model.config.max_len // 2} 之间，--top={top} 必须 ≥ 1。")
    device = model.tok_embeddings.weight.device
    prompt_ids = fit_prompt(tokenizer, [], prompt, model.config.max_len - steps)
    cache = KVCache(model.config, 1, device, model.tok_embeddings.weight.dtype)
    logits = prefill(model, prompt_ids, cache)
    shown = "".join(show_token(tokenizer.id_to_token[i]) for i in prompt_ids)
    lines = [f"提示 (prompt): {shown}   （{len(prompt_ids)} 个词元，词表 {tokenizer.vocab_size}）"]
    reply: list[int] = []
    for step in range(1, steps + 1):
        probs = logits.float().softmax(-1)
        token = int(probs.argmax())
        lines += ["", f"第 {step} 步 (step {step})：前 {top} 名，温度 1 的原始分布 (raw distribution)"]
        lines += _top_table(probs, tokenizer, top)
        lines.append(f"  → 贪心选 (greedy pick) {show_token(tokenizer.id_to_token[token])!r}")
        if token == tokenizer.token_id(END) or step == steps:
            break
        reply.append(token)
        logits = decode_one_token(model, token, cache)
    written = tokenizer.decode(reply) or "（还没有，重复惩罚这一步不起作用）"
    lines += ["", f"第 {step} 步的分布在不同采样设置下 (how sampling settings reshape step {step})：",
              f"  已写出的回答 (reply so far，重复惩罚只看这些字): {written}"]
    lines += ["  " + line for line in settings_table(logits, reply, tokenizer, top)]
    return "\n".join(lines)


