"""第 8 章参考答案：温度、top-k、top-p。"""
import torch


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    kth = torch.topk(logits, k).values[-1]                  # 第 k 大的 logit
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    sorted_logits, order = torch.sort(logits, descending=True)
    probs = sorted_logits.softmax(-1)
    drop_sorted = (probs.cumsum(-1) - probs) >= p           # 排在前面的已经够 p 了
    drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)  # 换回原来的顺序
    return logits.masked_fill(drop, float("-inf"))
