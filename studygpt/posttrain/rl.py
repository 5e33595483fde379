"""强化学习 (reinforcement learning)：可验证奖励 (verifiable reward) + GRPO 式的组相对优势。

监督学习告诉模型"标准答案是这样写的"；强化学习只告诉它"你这次写的对不对"，让它自己去试。
每一步（training/trainer.py 的同一个训练循环里的一个优化步）：
    1. 出题 (prompts)：从任务的训练题里抽 P 道（posttrain/tasks.py；留出题永远不抽）；
    2. 抽样 (rollouts)：用当前的模型对每道题抽 G 个回答（一组 group），同时记下抽样时每个词元的对数概率；
    3. 打分 (reward)：程序检查每个回答，对 = 1，错或格式不对 = 0；
    4. 组相对优势 (group-relative advantage)：A = (r − 组内平均) / (组内标准差 + ε)——
       同一道题的 G 个回答互相比：比同组平均好的回答被加强，差的被削弱。不需要另训练一个价值网络 (critic)，
       这正是 GRPO（DeepSeekMath，Shao 等 2024）相对 PPO 省掉的东西。全组都对或全组都错时 A 全为 0：这道题不教任何东西；
    5. 目标 (objective)：PPO 式的裁剪比率 (clipped ratio) min(ρ·A, clip(ρ, 1−ε, 1+ε)·A)，ρ = π/π_old，
       减去 β·KL(π‖π_ref)：冻结的起点模型当参考，别为了奖励把说话方式（和别的技能）丢掉。
P 道题 × G 个回答就是一个"批次"。抽样在训练循环取批次时做 (RolloutBatches)，损失在 GRPOObjective 里算，
于是检查点、续训、学习率调度、梯度裁剪都和普通训练一样。

形状记号：B 批大小 = P·G 个回答 (batch) · T 序列长度 (time) · V 词表大小
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Iterator

import torch

from studygpt.errors import StudyGPTError
from studygpt.model.kv_cache import KVCache
from studygpt.posttrain.dpo import token_logprobs
from studygpt.posttrain.tasks import Task, format_reward
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX, parse_reply, render_prompt
from studygpt.tokenizer.specials import END, PAD

REWARDS = ("exact", "format")


@dataclass
class RLConfig:
    """一次强化学习的设置（记进检查点的 config.json；续训时用同样的命令行参数）。"""
    task: str = "add3"
    prompts_per_step: int = 16    # P：每步几道题
    group_size: int = 8           # G：每道题抽几个回答；组越大，"比同组平均好"估得越准
    temperature: float = 1.0      # 抽样温度；重算概率 (token_logprobs) 用同一个温度，ρ 的分子分母才是同一个分布
    max_new_tokens: int = 24      # 回答最多多少个词元（标准答案 add3 约 16 个、sub2 约 11 个，含 <|end|>；带草稿约 60 个）
    reward: str = "exact"         # exact：只看最后的答案对不对；format：只看格式（第 16 章的"钻空子"演示，见 tasks.format_reward）
    clip: float = 0.2             # ε：比率被裁剪到 [1−ε, 1+ε]
    kl_coef: float = 0.05         # β：KL 惩罚的权重
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [(self.prompts_per_step >= 1, "prompts_per_step 必须 ≥ 1"),
                  (self.group_size >= 2, "group_size 必须 ≥ 2（一个回答没法和同组比较）"),
                  (self.temperature > 0, "temperature 必须 > 0（抽样才有多样的回答可比）"),
                  (self.max_new_tokens >= 0, "max_new_tokens 必须 ≥ 1（0 = 按模型自动：会打草稿的 120，否则 24）"),
                  (0 < self.clip < 1, "clip 必须在 (0, 1) 之间"), (self.kl_coef >= 0, "kl_coef 必须 ≥ 0"),
                  (self.reward in REWARDS, f"reward 必须是 {' / '.join(REWARDS)} 之一")]
        for ok, message in checks:
            if not ok:
                raise StudyGPTError(f"强化学习设置无效 (invalid RLConfig): {message}。")

    def to_dict(self) -> dict:
        return asdict(self)


# ===== 1. 组相对优势 =====
def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """rewards (B,)，每 group_size 个连续的回答是同一道题的一组 → 优势 (B,)，每组平均为 0。

    除以组内标准差：不论一道题是"8 个对 1 个"还是"8 个对 4 个"，每组的更新幅度都差不多。
    eps 防止全组奖励相同时除以 0（那时分子已经是 0，优势就是 0）。
    """
    groups = rewards.view(-1, group_size)                               # (P, G)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True, unbiased=False)
    return ((groups - mean) / (std + eps)).view(-1)


# ===== 2. KL 惩罚与裁剪的目标 =====
def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """每个词元的 KL(π‖π_ref) 估计（Schulman 的 k3）：exp(Δ) − Δ − 1，Δ = log π_ref − log π。

    只用抽中的那个词元就能估计（不必对整个词表求和）；永远 ≥ 0，π = π_ref 时正好是 0。
    """
    delta = ref_logp - logp
    return delta.exp() - delta - 1


def clipped_objective(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      clip: float) -> torch.Tensor:
    """PPO 的裁剪代理目标 (clipped surrogate)，每个词元一个值（越大越好）。advantages 已广播到每个词元。

    ρ = π/π_old = exp(log π − log π_old)。min(ρ·A, clip(ρ)·A)：A > 0 时 ρ 超过 1+ε 就不再奖励，
    A < 0 时 ρ 低于 1−ε 就不再惩罚——一批样本不能把策略推得离抽样时太远。
    每批抽样只更新一次时，更新那一刻 ρ = 1，裁剪不起作用（梯度就是 A·∇log π）；同一批样本更新多次时它才起作用。
    """
    ratio = (logp - old_logp).exp()
    return torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)


class GRPOObjective:
    """训练循环的目标函数 (model, batch) → (平均损失, 回答词元数)。reference 是冻结的起点模型。"""

    def __init__(self, reference: torch.nn.Module, config: RLConfig):
        self.reference, self.config = reference, config
        self.last: dict = {}  # 最近一批的 KL 与被裁剪的比例，给训练时打印、画曲线

    def count(self, batch: dict) -> int:
        return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, int]:
        c = self.config
        mask = (batch["labels"][:, 1:] != IGNORE_INDEX).float()           # (B, T-1)：只算回答的词元
        logp = token_logprobs(model, batch["input_ids"], c.temperature)   # (B, T-1)
        with torch.no_grad():
            ref_logp = token_logprobs(self.reference, batch["input_ids"], c.temperature)
        advantages = batch["advantages"][:, None]                         # (B, 1) → 广播到每个词元
        surrogate = clipped_objective(logp, batch["old_logps"], advantages, c.clip)
        kl = kl_k3(logp, ref_logp)
        n = int(mask.sum())
        # 要最大化"代理目标 − β·KL"，优化器做的是最小化，所以取负；对所有回答词元取平均
        loss = -((surrogate - c.kl_coef * kl) * mask).sum() / max(n, 1)
        clipped = ((logp - batch["old_logps"]).exp() - 1).abs() > c.clip
        self.last = {"kl": float((kl.detach() * mask).sum()) / max(n, 1),
                     "clip_frac": float((clipped.float() * mask).sum()) / max(n, 1)}
        return loss, n


# ===== 3. 抽样：当前策略对每道题写 G 个回答 =====
@torch.no_grad()
def sample_replies(model, prompts: list[list[int]], max_new_tokens: int, temperature: float, end_id: int,
                   generator: torch.Generator) -> tuple[list[list[int]], list[list[float]]]:
    """一批等长的提示，每个抽一个回答（一起解码：一批只调用 max_new_tokens 次模型，比一个个抽快得多）。

    出: (每个回答的词元，含结尾的 <|end|>（写到长度上限还没结束就没有）, 每个词元抽样时的对数概率)。
    """
    device = model.tok_embeddings.weight.device
    max_new_tokens = min(max_new_tokens, model.config.max_len - len(prompts[0]))
    cache = KVCache(model.config, len(prompts), device, model.tok_embeddings.weight.dtype)
    x = torch.tensor(prompts, device=device)                                    # (B, T_prompt)
    logits = model.output(model(x, cache=cache, return_hidden=True)[:, -1])     # (B, V)
    tokens, logps = [], []
    finished = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    for step in range(max_new_tokens):
        log_probs = (logits.float() / temperature).log_softmax(-1)
        token = torch.multinomial(log_probs.exp(), 1, generator=generator)    # (B, 1)
        tokens.append(token[:, 0])
        logps.append(log_probs.gather(-1, token)[:, 0])
        finished |= token[:, 0] == end_id
        if finished.all() or step + 1 == max_new_tokens:
            break
        logits = model(token, cache=cache)[:, -1]
    replies, reply_logps = [], []
    for ids, lps in zip(torch.stack(tokens, 1).tolist(), torch.stack(logps, 1).tolist()):   # (B, n)
        n = ids.index(end_id) + 1 if end_id in ids else len(ids)                 # 保留 <|end|>：学会"何时停下"
        replies.append(ids[:n])
        reply_logps.append(lps[:n])
    return replies, reply_logps


def rollout_batch(model, tokenizer: Tokenizer, task: Task, config: RLConfig, step: int) -> tuple[dict, dict]:
    """第 step 步的一批：出 P 道题，各抽 G 个回答，打分，算优势。出: (批次, 统计)。

    这一步的随机性只由 (seed, step) 决定：出题用 random.Random，抽样用自己的 torch.Generator。
    所以从检查点续训时，第 step 步抽到的题和回答与一口气训下来完全相同（tests/test_rl.py 检查）。
    """
    rng = random.Random(f"{config.seed}-{step}")
    generator = torch.Generator(device=model.tok_embeddings.weight.device)
    generator.manual_seed(rng.getrandbits(63))
    end_id, pad_id = tokenizer.token_id(END), tokenizer.token_id(PAD)
    problems = [task.sample_problem(rng) for _ in range(config.prompts_per_step)]
    prompts = [render_prompt([], p.question, tokenizer) for p in problems for _ in range(config.group_size)]
    replies: list[list[int]] = [[] for _ in prompts]
    logps: list[list[float]] = [[] for _ in prompts]
    by_length: dict[int, list[int]] = {}
    for i, prompt in enumerate(prompts):  # 等长的提示一起解码（同一道题的 G 个回答总在同一批里）
        by_length.setdefault(len(prompt), []).append(i)
    was_training = model.training
    model.eval()
    for rows in by_length.values():
        out, out_logps = sample_replies(model, [prompts[i] for i in rows], config.max_new_tokens,
                                        config.temperature, end_id, generator)
        for i, reply, lp in zip(rows, out, out_logps):
            replies[i], logps[i] = reply, lp
    model.train(was_training)
    rewards = []
    for i, (prompt, reply) in enumerate(zip(prompts, replies)):
        parsed = parse_reply(reply, tokenizer)  # 草稿 <think>…</think> 不判分：只看最后的正文（或只看格式）
        # 没写完（没有 <|end|>）的回答也判分：格式不完整就是 0 分
        finished = bool(reply) and reply[-1] == end_id
        problem = problems[i // config.group_size]
        score = task.score(problem, parsed.content) if config.reward == "exact" else format_reward(problem, parsed)
        rewards.append(score if finished else 0.0)
    width = max(len(p) + len(r) for p, r in zip(prompts, replies))
    batch = {"input_ids": torch.tensor([p + r + [pad_id] * (width - len(p) - len(r)) for p, r in zip(prompts, replies)]),
             "labels": torch.tensor([[IGNORE_INDEX] * len(p) + r + [IGNORE_INDEX] * (width - len(p) - len(r))
                                     for p, r in zip(prompts, replies)]),
             # 与 token_logprobs 对齐：第 t 列是预测词元 t+1 的对数概率，所以回答的第一个词元在第 len(p)-1 列
             "old_logps": torch.tensor([[0.0] * (len(p) - 1) + lp + [0.0] * (width - len(p) - len(lp))
                                        for p, lp in zip(prompts, logps)]),
             "advantages": group_advantages(torch.tensor(rewards), config.group_size)}
    r = torch.tensor(rewards)
    stats = {"reward": float(r.mean()), "length": sum(map(len, replies)) / len(replies),
             "groups_with_signal": float((r.view(-1, config.group_size).std(dim=1) > 0).float().mean())}
    return batch, stats


class RolloutBatches:
    """训练循环的"数据"：每取一个批次，就用当前的策略现抽一批（所以是 on-policy 的）。

    没有 __len__（永远抽不完）：训练步数由 max_steps 决定。iter_from(k) 从第 k 步的那批开始，续训时精确接上。
    """

    def __init__(self, model, tokenizer: Tokenizer, task: Task, config: RLConfig):
        self.model, self.tokenizer, self.task, self.config = model, tokenizer, task, config
        self.last_stats: dict = {}
        self.batch_size = config.prompts_per_step * config.group_size

    def __iter__(self) -> Iterator[dict]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[dict]:
        step = start
        while True:
            batch, self.last_stats = rollout_batch(self.model, self.tokenizer, self.task, self.config, step)
            yield batch
            step += 1
