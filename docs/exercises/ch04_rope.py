"""第 4 章练习：旋转位置编码 RoPE (rotary position embedding)。检查：pytest docs/exercises -k ch04

把每头向量 (hs 维) 的前一半与后一半配对：(x1[i], x2[i]) 是第 i 对，i = 0 … hs/2 − 1。
第 i 对的频率 inv_freq[i] = 1 / base^(2i / hs)，位置 p 上的旋转角 = p · inv_freq[i]。
对照：studygpt/model/transformer.py 的 rope_tables 与 apply_rope。
"""
import torch


def rope_angles(head_size: int, max_len: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """练习 4.1：返回 (cos, sin)，形状都是 (max_len, head_size / 2)：位置 p、第 i 对的 cos/sin(p · inv_freq[i])。"""
    raise NotImplementedError("练习 4.1：每个位置、每对维度的旋转角 (rotation angles)")


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """练习 4.2：把 x (..., T, hs) 的每对维度 (x1, x2) 旋转：(x1·cos − x2·sin, x1·sin + x2·cos)。

    cos、sin 的形状 (T, hs/2)，会自动广播 (broadcast) 到 x 前面的维度。输出形状与 x 相同。
    """
    raise NotImplementedError("练习 4.2：旋转每一对维度 (rotate each pair)")
