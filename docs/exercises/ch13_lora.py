"""第 13 章练习：LoRA 的前向、合并与参数量。检查：pytest docs/exercises -k ch13

记号：x (..., in)，冻结的权重 W (out × in)，A (r × in)，B (out × r)，缩放 alpha / r。
对照：studygpt/model/lora.py 的 LoRALinear.forward 与 LoRALinear.merged_weight。
"""
import torch


def lora_forward(x: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    """练习 13.1：y = x Wᵀ + (alpha / r) · x Aᵀ Bᵀ，r 是 A 的行数。返回 (..., out)。

    提示：先乘 Aᵀ 降到 r 维，再乘 Bᵀ 升回 out 维——不要先算出 B A 这个大矩阵。
    """
    raise NotImplementedError("练习 13.1：LoRA 前向 (LoRA forward)")


def merge_weight(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    """练习 13.2：合并 (merge)：返回 W' = W + (alpha / r) · B A，形状与 W 相同 (out × in)。

    合并之后 x W'ᵀ 与 lora_forward 相等（只差浮点舍入），推理时就不需要那条支路了。
    """
    raise NotImplementedError("练习 13.2：合并适配器 (merge the adapter)")


def lora_param_count(d_in: int, d_out: int, rank: int) -> tuple[int, float]:
    """练习 13.3：一个 d_out × d_in 的线性层装上秩 rank 的 LoRA：返回 (A 与 B 的参数总数, 它占原矩阵参数的比例)。"""
    raise NotImplementedError("练习 13.3：LoRA 有多少参数 (count the adapter's parameters)")
