"""第 14 章练习：偏好微调 (DPO) 的三块积木。检查：pytest docs/exercises -k ch14

对照：studygpt/posttrain/dpo.py 的 sequence_logprobs、dpo_loss 与 chosen_nll。
"""
import torch


def sequence_logprob(token_logps: torch.Tensor, reply_mask: torch.Tensor) -> torch.Tensor:
    """练习 14.1：整段回答的对数概率 log π(y|x)。

    token_logps (B, T)：每个位置"下一个词元真的是它"的对数概率；reply_mask (B, T)：True = 这个位置是回答的词元。
    返回 (B,)：每行只把回答的词元加起来（提示不算：我们只比较"怎样回答"）。
    """
    raise NotImplementedError("练习 14.1：序列的对数概率")


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """练习 14.2：DPO 损失（标量）。四个输入都是 (N,) 的序列对数概率。

    隐式奖励 r = β·(log π − log π_ref)；损失 = −log σ(r_chosen − r_rejected) 的平均。
    提示：torch.nn.functional.logsigmoid 比 torch.log(torch.sigmoid(x)) 更稳（x 很负时不会得到 log 0）。
    """
    raise NotImplementedError("练习 14.2：DPO 损失")


def chosen_nll(policy_chosen: torch.Tensor, reply_tokens: torch.Tensor) -> torch.Tensor:
    """练习 14.3：chosen 回答的 SFT 损失（标量）——`--sft-weight` 加进 DPO 的那一项。

    policy_chosen (N,)：每条 chosen 回答的序列对数概率（练习 14.1 的结果）；reply_tokens (N,)：每条回答有几个词元。
    返回每个词元的平均负对数似然，先在每条回答里平均，再在 N 条之间平均（长回答不会压过短回答）。
    """
    raise NotImplementedError("练习 14.3：chosen 的 SFT 损失")
