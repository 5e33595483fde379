"""第 14 章参考答案：序列的对数概率、DPO 损失与 chosen 的 SFT 损失。"""
import torch
import torch.nn.functional as F


def sequence_logprob(token_logps: torch.Tensor, reply_mask: torch.Tensor) -> torch.Tensor:
    return (token_logps * reply_mask).sum(-1)              # 提示的位置乘 0，不计入


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -F.logsigmoid(margin).mean()


def chosen_nll(policy_chosen: torch.Tensor, reply_tokens: torch.Tensor) -> torch.Tensor:
    return -(policy_chosen / reply_tokens).mean()           # 每条先除以自己的词元数，再平均
