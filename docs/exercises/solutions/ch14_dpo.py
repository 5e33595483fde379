"""第 14 章参考答案：序列的对数概率与 DPO 损失。"""
import torch
import torch.nn.functional as F


def sequence_logprob(token_logps: torch.Tensor, reply_mask: torch.Tensor) -> torch.Tensor:
    return (token_logps * reply_mask).sum(-1)              # 提示的位置乘 0，不计入


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -F.logsigmoid(margin).mean()
