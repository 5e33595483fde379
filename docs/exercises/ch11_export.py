"""第 11 章练习：把 rotate-half 的 q、k 换成 llama.cpp 的相邻配对。检查：pytest docs/exercises -k ch11

我们（和 Hugging Face 的 Llama）的 RoPE 把每个头的第 i 维与第 i + hs/2 维配成一对旋转；
llama.cpp 的 llama 架构把第 2i 维与第 2i+1 维配成一对。导出 GGUF 时把 q、k 投影矩阵的行重排，
两边算出的注意力就完全一样。对照：studygpt/export/gguf.py 的 permute_for_llama_cpp。
"""
import torch


def permute_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """练习 11.1：q 或 k 的权重 w (n_head·hs, C) → 同形状的新矩阵：每个头内部的行按
    [0, hs/2, 1, hs/2+1, 2, hs/2+2, …] 的顺序排列（旧的第 i 行与第 i + hs/2 行挨在一起）。"""
    raise NotImplementedError("练习 11.1：重排 q/k 的行 (permute rows for llama.cpp)")


def rope_adjacent_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """练习 11.2：llama.cpp 式的 RoPE：x (T, hs) 的第 i 对是 (x[:, 2i], x[:, 2i+1])，
    旋转成 (a·cos − b·sin, a·sin + b·cos)；cos、sin 的形状 (T, hs/2)。输出形状与 x 相同。"""
    raise NotImplementedError("练习 11.2：相邻配对的 RoPE (RoPE on adjacent pairs)")
