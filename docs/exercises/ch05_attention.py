"""第 5 章练习：因果自注意力 (causal self-attention)，手写出来。检查：pytest docs/exercises -k ch05

形状记号：B 批大小 · nh 头数 · T 序列长度 · hs 每头维度。
对照：studygpt/model/transformer.py 的 causal_mask 与 manual_attention。
"""
import torch


def causal_mask(T: int) -> torch.Tensor:
    """练习 5.1：(T, T) 的布尔矩阵，mask[i, j] = True 表示位置 i 可以看位置 j（只能看 j ≤ i）。"""
    raise NotImplementedError("练习 5.1：因果掩码 (causal mask)")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """练习 5.2：q, k, v 都是 (B, nh, T, hs)，返回因果注意力的输出 (B, nh, T, hs)。

    步骤：分数 = q @ kᵀ / √hs → 不许看的位置填 −∞ → 在最后一维做 softmax → 乘以 v。
    注意：注意力要在 T 个词元之间做（最后两维），而不是在 B 个样本之间——原项目就错在这里。
    """
    raise NotImplementedError("练习 5.2：手写因果注意力 (causal attention by hand)")
