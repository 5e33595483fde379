"""看看里面 (look inside)：`studygpt inspect …` 的四个工具，每个都是一个可以直接调用的函数。

    inspect_tokens     文字 → 词元、编号、<unk>；对话时标出哪些词元参与损失（损失掩码 loss mask）
    inspect_next       下一个词元的前 k 名与概率，逐步贪心往下写；温度 / top-k / top-p / 重复惩罚怎样改变分布
    attention_maps     每层、每个头的注意力热力图 (heatmap)，横轴是被看的词元 (key)，纵轴是正在看的词元 (query)
    inspect_params     参数量和一个训练步的计算量 (FLOPs) 各花在哪个组件上（公式见 cost_breakdown）

形状记号 (shape legend)：T 序列长度 (time) · C 通道 (d_model) · nh 头数 · L 层数 · V 词表大小 · H 前馈隐藏维度
这些函数只读模型，不改它（attention_maps 用前向钩子临时换上手写注意力路径，用完摘掉）。
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch

from studygpt.chat_format import IGNORE_INDEX, render_conversation, show_mask
from studygpt.errors import StudyGPTError
from studygpt.evaluate import pad_to_width
from studygpt.generate import (SamplingConfig, decode_one_token, eval_mode, fit_prompt, generate_tokens, prefill,
                               process_logits)
from studygpt.model import DialogueModel, KVCache, ModelConfig, causal_mask, manual_attention
from studygpt.plotting import setup_cjk_font
from studygpt.tokenizer import END, UNK, Tokenizer

# 特殊词元在表格和图上的短写法；空白字符写成看得见的符号
SHORT = {"<|user|>": "<user>", "<|assistant|>": "<asst>", "<|end|>": "<end>", "\n": "\\n", "\t": "\\t", " ": "␠"}


def show_token(token: str) -> str:
    return SHORT.get(token, token)


# ===== 1. 词元与损失掩码 (tokens and the loss mask) =====
def inspect_tokens(texts: Sequence[str], tokenizer: Tokenizer, color: bool = False, with_mask: bool = True) -> str:
    """一段文字 → 词元、编号、<unk> 数；多段文字当作对话（用户、助手交替），再标出哪些词元被学习。

    color=True（终端里）学习的词元是绿色，否则写成 [字]（见 chat_format.show_mask）；
    with_mask=False 时不画掩码那两行。返回要打印的文字。
    """
    unk_id = tokenizer.token_id(UNK)
    if len(texts) == 1:
        ids = tokenizer.encode(texts[0])
        return "\n".join([
            "词元 (tokens): " + " ".join(repr(tokenizer.id_to_token[i]) for i in ids),
            f"编号 (ids):    {ids}",
            f"共 {len(ids)} 个词元（{len(texts[0])} 个字符，平均每个词元 {len(texts[0]) / max(len(ids), 1):.2f} 个字符），"
            f"其中 <unk> {ids.count(unk_id)} 个"])
    turns = list(texts) if len(texts) % 2 == 0 else list(texts) + [""]  # 最后一句没有回答时补一个空回答
    ids, labels = render_conversation(turns, tokenizer)
    learned = sum(label != IGNORE_INDEX for label in labels)
    mask = ["学习的词元为绿色:" if color else "学习的词元用 [ ] 标出 (learned tokens in brackets):",
            show_mask(ids, labels, tokenizer, color=color)] if with_mask else []
    return "\n".join([f"编号 (ids): {ids}"] + mask +
                     [f"共 {len(ids)} 个词元，其中 {learned} 个参与损失 (learned)，<unk> {ids.count(unk_id)} 个"])


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


# ===== 3. 注意力热力图 (attention heatmaps) =====
@contextmanager
def manual_attention_path(model: DialogueModel) -> Iterator[list]:
    """with 里每层注意力改用手写的 model.manual_attention 计算，并记下 softmax 之后的权重。

    yield 一个列表，每层一项：最近一次前向的注意力权重 (B, nh, T, Tk)。
    做法是给每层的 Attention 挂一个前向钩子 (forward hook)，把输出换成手写路径的结果；
    模型本身不知道有人在看，出了 with 钩子就摘掉。不支持 KV 缓存（检查时整段一次算完）。
    """
    weights: list = [None] * len(model.layers)

    def hook_for(i: int):
        def hook(attention, args, output):
            x, cos, sin, mask, cache = args[:5]
            if cache is not None:
                raise StudyGPTError("手写注意力路径只用于检查，不支持 KV 缓存；请一次传入整段词元。")
            q, k, v = attention.qkv(x, cos, sin)
            y, weights[i] = manual_attention(q, k, v, mask if mask is not None else causal_mask(x.shape[1], x.device))
            return attention.merge_heads(y)
        return hook

    handles = [layer.attention.register_forward_hook(hook_for(i)) for i, layer in enumerate(model.layers)]
    try:
        yield weights
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def attention_weights(model: DialogueModel, ids: Sequence[int]) -> list[torch.Tensor]:
    """一条序列走一遍手写注意力路径，返回每层的注意力权重，list 长 L，每个 (nh, T, T)。"""
    device = model.tok_embeddings.weight.device
    with eval_mode(model), manual_attention_path(model) as weights:
        model(torch.tensor([list(ids)], dtype=torch.long, device=device))
    return [w[0].float().cpu() for w in weights]  # (nh, T, T)


def plot_heads(weights: torch.Tensor, labels: Sequence[str], title: str, path: Path) -> Path:
    """一层的权重 (nh, T, T) → 一张 PNG：每个头一格，纵轴 query、横轴 key，颜色越深看得越多。"""
    from matplotlib.figure import Figure  # 不用 pyplot：不需要图形界面，也不改全局后端
    nh, T = weights.shape[0], weights.shape[-1]
    cols = min(nh, 2 if nh <= 4 else 4)  # 4 个头排成 2×2，8 个头排成 2×4
    rows = math.ceil(nh / cols)
    side = max(3.0, 0.3 * T)
    fig = Figure(figsize=(side * cols + 1, side * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for h, ax in enumerate(axes.flat):
        if h >= nh:
            ax.axis("off")
            continue
        image = ax.imshow(weights[h].numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_title(f"头 head {h}")
        ax.set_xticks(range(T), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(T), labels, fontsize=8)
        ax.set_xlabel("被看的词元 key")
        ax.set_ylabel("正在看的词元 query")
    fig.colorbar(image, ax=axes, shrink=0.6, label="注意力权重 weight")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path


def attention_maps(model: DialogueModel, tokenizer: Tokenizer, prompt: str, out_dir: str | Path,
                   reply_tokens: int = 0) -> tuple[list[Path], str | None]:
    """把用户输入 prompt 渲染成提示（可再贪心续写 reply_tokens 个回答词元），画每层的注意力热力图。

    出: (PNG 路径列表 out_dir/attention_layer{i}.png, 用上的中文字体名；None 表示没找到中文字体，
        图照样写出，只是汉字会画成方框，调用者应打印 plotting.INSTALL_HINT)。
    """
    if not 0 <= reply_tokens <= model.config.max_len // 2:
        raise StudyGPTError(f"--reply-tokens={reply_tokens} 必须在 0..{model.config.max_len // 2} 之间（模型的 max_len 的一半）。")
    ids = fit_prompt(tokenizer, [], prompt, model.config.max_len - reply_tokens)
    if reply_tokens:
        greedy = SamplingConfig(temperature=0.0)
        ids += [s.token_id for s in generate_tokens(model, ids, reply_tokens, greedy, tokenizer)]
    labels = [show_token(tokenizer.id_to_token[i]) for i in ids]
    font = setup_cjk_font()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        if font is None:  # 调用者会打印一行安装提示，不必为每个画不出的字各警告一次
            warnings.filterwarnings("ignore", message="Glyph .* missing")
        paths = [plot_heads(w, labels, f"第 {i} 层注意力 (layer {i} attention)：{''.join(labels)}",
                            out_dir / f"attention_layer{i}.png")
                 for i, w in enumerate(attention_weights(model, ids))]
    return paths, font


# ===== 4. 参数与计算量 (parameters and FLOPs) =====
@dataclass
class Cost:
    name: str
    params: int
    flops_per_token: int  # 训练一个词元（前向 + 反向）的浮点运算数
    formula: str


def cost_breakdown(config: ModelConfig, seq_len: int) -> list[Cost]:
    """每个组件的参数量与训练时每个词元的 FLOPs。一个训练步的 FLOPs = 每词元 FLOPs × 这一步的词元数。

    规则：矩阵乘法 (m×k)·(k×n) 每个乘加算 2 FLOPs；反向传播约是前向的 2 倍，所以训练 ≈ 3 × 前向，
    一个 C×D 的权重矩阵每个词元花 6·C·D（这就是常说的"6N"，N 为参数量）。
        词嵌入 (embedding lookup)     参数 V·C             FLOPs 0（查表，不做乘法）
        输出层 (output head)          参数 0（与词嵌入共享 tied）   6·C·V
        注意力投影 wqkv + wo          参数 4·C²·L          6·4·C²·L
        注意力分数 QKᵀ 与 AV          参数 0               12·L·T·C（每层前向 QKᵀ 2·T·C + AV 2·T·C，再 ×3）
        前馈 SwiGLU w13 + w2         参数 3·C·H·L         6·3·C·H·L
        归一化 RMSNorm               参数 (2L+1)·C        ≈ 0（逐元素运算，和矩阵乘法比可以忽略）
    注意力分数按完整的 T×T 矩阵计（PaLM 论文的算法）；因果掩码下其实只需要一半。
    训练时输出层只在有标签的位置算（见 model.lm_loss），实际比这里少。
    """
    C, L, V, H = config.d_model, config.n_layers, config.vocab_size, config.ffn_hidden
    return [
        Cost("词嵌入 (embedding lookup)", V * C, 0, "V·C 个参数；查表 0 FLOPs"),
        Cost("输出层 (output head, tied)", 0, 6 * C * V, "6·C·V"),
        Cost("注意力投影 (wqkv, wo)", 4 * C * C * L, 6 * 4 * C * C * L, "6·4C²·L"),
        Cost("注意力分数 (QKᵀ, AV)", 0, 12 * L * seq_len * C, "12·L·T·C"),
        Cost("前馈 (SwiGLU MLP)", 3 * C * H * L, 6 * 3 * C * H * L, "6·3·C·H·L"),
        Cost("归一化 (RMSNorm)", (2 * L + 1) * C, 0, "(2L+1)·C 个参数；≈ 0 FLOPs"),
    ]


def _human(n: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} "


def inspect_params(config: ModelConfig, batch_size: int, seq_len: int, grad_accum_steps: int = 1) -> str:
    """参数与一个训练步 (batch_size × seq_len × grad_accum_steps 个词元) 的 FLOPs 按组件的表。返回要打印的文字。"""
    T = min(seq_len, config.max_len)
    costs = cost_breakdown(config, T)
    params = sum(c.params for c in costs)
    per_token = sum(c.flops_per_token for c in costs)
    tokens = batch_size * T * grad_accum_steps

    def row(*cells: str) -> str:  # 终端里对齐的一行：名字左对齐，数字右对齐，公式在最后
        widths = (28, 14, 8, 18, 8)
        aligned = "".join(pad_to_width(c, w, right=i > 0) for i, (c, w) in enumerate(zip(cells, widths)))
        return f"{aligned}  {cells[-1]}".rstrip()

    lines = [f"模型 (model): d_model C={config.d_model} n_head={config.n_head} n_layers L={config.n_layers} "
             f"ffn_hidden H={config.ffn_hidden} vocab_size V={config.vocab_size} 序列长度 T={T}",
             f"一个训练步 (one step) = batch_size {batch_size} × T {T} × grad_accum_steps {grad_accum_steps} "
             f"= {tokens:,} 个词元",
             "",
             row("组件 (component)", "参数 params", "占比", "FLOPs/步 (step)", "占比", "公式 (per token)")]
    for c in costs:
        lines.append(row(c.name, f"{c.params:,}", f"{c.params / params:.1%}",
                         f"{_human(c.flops_per_token * tokens)}FLOP", f"{c.flops_per_token / per_token:.1%}", c.formula))
    lines.append(row("合计 (total)", f"{params:,}", "100%", f"{_human(per_token * tokens)}FLOP", "100%", ""))
    lines += ["", f"对照 (rule of thumb) 6·N·词元数 = {_human(6 * params * tokens)}FLOP（N 含词嵌入；"
              "词嵌入查表其实不花 FLOPs，而共享的输出层要花）"]
    return "\n".join(lines)
