"""看看里面之三：每层、每个头的注意力热力图 (heatmap)，横轴是被看的词元 (key)，纵轴是正在看的词元 (query)。

`studygpt inspect attention RUN TEXT`。用前向钩子临时换上手写注意力路径，用完摘掉，模型不变。
形状记号 (shape legend)：T 序列长度 (time) · nh 头数 · L 层数
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import torch

from studygpt.errors import StudyGPTError
from studygpt.generation.generate import SamplingConfig, generate_tokens
from studygpt.inspection.tokens import show_token
from studygpt.model.transformer import (
    DialogueModel,
    causal_mask,
    eval_mode,
    manual_attention,
)
from studygpt.plotting import setup_cjk_font
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import fit_prompt


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
        图照样写出，只是汉字会画成方框；setup_cjk_font 已经打印过一行安装提示)。
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
    paths = [plot_heads(w, labels, f"第 {i} 层注意力 (layer {i} attention)：{''.join(labels)}",
                        out_dir / f"attention_layer{i}.png")
             for i, w in enumerate(attention_weights(model, ids))]
    return paths, font


