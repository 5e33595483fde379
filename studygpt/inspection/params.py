"""看看里面之四：参数量和一个训练步的计算量 (FLOPs) 各花在哪个组件上（公式见 cost_breakdown）。

`studygpt inspect params`（别名 `studygpt info`）。
形状记号 (shape legend)：T 序列长度 · C 通道 (d_model) · L 层数 · V 词表大小 · H 前馈隐藏维度
"""
from __future__ import annotations

from dataclasses import dataclass

from studygpt.evaluation.metrics import pad_to_width
from studygpt.model.transformer import ModelConfig


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
