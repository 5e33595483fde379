"""加载模型用于推理 (loading a model for inference)：chat、generate、eval、serve、inspect 都从这里拿模型。

    检查点 (checkpoint.load_model) → 权重按列优先存放 (column_major_weights) → 需要时编译逐词解码 (generation/fast_decode.py)

速度上的安排都在这条路上，模型本身 (model/transformer.py) 只管数学；实测数字见 docs/performance.md。
"""
from __future__ import annotations

import sys

from studygpt.generation.generate import SamplingConfig
from studygpt.hardware import pick_device
from studygpt.model.checkpoint import load_model
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer


def column_major_weights(model: DialogueModel) -> DialogueModel:
    """每个矩阵改为按列优先 (column-major) 存放：形状 (out, in) 与数值都不变，只是元素在内存里按 (in, out) 排。

    为什么：逐词生成时每一步都是"向量 × 矩阵"，每个矩阵都要从内存读一遍，速度由读内存的快慢决定。
    PyTorch 在 CPU 上把它交给 MKL，而 MKL 读列优先的矩阵比读行优先的快（docs/performance.md 有实测）。
    训练不需要它：检查点里存的总是普通的行优先张量。编译的逐词解码要的正好相反（compile_decoding 会换回行优先）。
    原地修改并返回 model。
    """
    for p in model.parameters():
        if p.dim() == 2:
            p.data = p.data.t().contiguous().t()
    return model


def load_for_inference(run: str, device: str | None = None, compile_for: SamplingConfig | None = None,
                       announce: bool | None = None) -> tuple[DialogueModel, Tokenizer]:
    """训练目录或检查点 → (model（eval 模式）, tokenizer)，权重按逐词生成最快的方式存放。

    device：cpu / cuda / mps，None 时自动选择；compile_for 是一个 SamplingConfig 时，
    按这套采样设置先编译好逐词解码（命令行的 --compile，第一次要十几秒到一分钟）。
    announce：在 stderr 上说加载了哪个检查点（规则见 checkpoint.load_model）。
    """
    model, tokenizer, _ = load_model(run, pick_device(device), announce=announce)
    if compile_for is None:
        return column_major_weights(model), tokenizer
    from studygpt.generation.fast_decode import (
        compile_decoding,  # 只有 --compile 才需要加载编译器
    )
    print("编译逐词解码 (compiling the decode step)：第一次要十几秒到一分钟……", file=sys.stderr)
    return compile_decoding(model, compile_for), tokenizer
