"""第 8 章练习：采样前对 logits 的三种处理。检查：pytest docs/exercises -k ch08

logits 是一行 (V,) 的分数。被排除的词元把 logit 设成 −∞（softmax 之后概率为 0）。
对照：studygpt/generation/generate.py 的 process_logits。
"""
import torch


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """练习 8.1：温度 (temperature)：logits 除以 temperature（> 0）。< 1 更尖、更保守；> 1 更平、更随机。"""
    raise NotImplementedError("练习 8.1：温度 (temperature)")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """练习 8.2：只留 logit 最大的 k 个，其余设为 −∞。（并列第 k 名的都留下。）"""
    raise NotImplementedError("练习 8.2：top-k")


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """练习 8.3：核采样 (nucleus, top-p)：按概率从大到小排，留下"累计概率刚好达到 p"的最少几个，其余设为 −∞。

    也就是：一个词元被去掉，当且仅当排在它前面的词元概率之和已经 ≥ p（概率最大的那个永远留下）。
    """
    raise NotImplementedError("练习 8.3：top-p")
