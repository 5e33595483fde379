"""DPO（直接偏好优化, Direct Preference Optimization）：不训练奖励模型，直接从"这个比那个好"里学。

数据是偏好对 (preference pairs)：同一个提示 (prompt)，一个更好的回答 (chosen)，一个更差的回答 (rejected)。
DPO 的做法（Rafailov 等，2023）：
    1. 留一份冻结的参考模型 (reference model) π_ref：就是开始微调之前的模型，它不再改变；
    2. 隐式奖励 (implicit reward) r(x, y) = β · (log π(y|x) − log π_ref(y|x))：
       策略 (policy) π 比参考模型更愿意说 y 多少，就是它"认为"y 有多好；
    3. 损失 = −log σ( r(x, chosen) − r(x, rejected) )：让 chosen 的隐式奖励高过 rejected。
开始时 π = π_ref，两个奖励都是 0，损失正好是 −log σ(0) = log 2 ≈ 0.693（tests/test_dpo.py 检查这一点）。
β 越大，策略越不敢离开参考模型（同样的奖励差只需要更小的改动）。

log π(y|x) 是整段回答 y 的对数概率 = 回答里每个词元的对数概率之和；提示部分不算（只学"怎样回答"）。
训练仍是同一个训练循环 (training/trainer.py)：这里只提供数据 (PairBatches) 和目标函数 (DPOObjective)。

形状记号：B 批大小 (batch) · T 序列长度 (time) · V 词表大小 · N 偏好对数
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from studygpt.errors import StudyGPTError
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX, render_conversation
from studygpt.tokenizer.specials import PAD

REQUIRED_FIELDS = ("prompt", "chosen", "rejected")


# ===== 1. 偏好对：读文件、校验 =====
@dataclass(frozen=True)
class Pair:
    """一条偏好：同一个提示下，chosen 比 rejected 好。"""
    prompt: str
    chosen: str
    rejected: str


def read_pairs(path: str | Path) -> list[Pair]:
    """读 JSONL 偏好文件：每行 {"prompt": …, "chosen": …, "rejected": …}。空行跳过。

    任何一行有问题（不是 JSON、缺字段、不是字符串、空字符串、chosen 与 rejected 相同）都抛 StudyGPTError，
    一句话说出文件、行号和怎么改——偏好数据错一行，学到的方向就可能反了，所以不悄悄跳过。
    """
    path = Path(path)
    if not path.is_file():
        raise StudyGPTError(f"{path}: 偏好文件不存在；请给一个 JSONL 文件，每行 {{\"prompt\": …, \"chosen\": …, \"rejected\": …}}。")
    pairs = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path} 第 {line_no} 行"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise StudyGPTError(f"{where}: 不是合法的 JSON ({err.msg})；每行应是一个 JSON 对象。") from err
        if not isinstance(item, dict):
            raise StudyGPTError(f"{where}: 应是 JSON 对象 {{\"prompt\": …, \"chosen\": …, \"rejected\": …}}。")
        for key in REQUIRED_FIELDS:
            if key not in item:
                raise StudyGPTError(f"{where}: 缺少字段 \"{key}\"；每行都要有 prompt、chosen、rejected。")
            if not isinstance(item[key], str) or not item[key].strip():
                raise StudyGPTError(f"{where}: 字段 \"{key}\" 是空的或不是字符串；请填上非空的文字。")
        if item["chosen"].strip() == item["rejected"].strip():
            raise StudyGPTError(f"{where}: chosen 与 rejected 相同，这条偏好没有信息；请删掉或改正。")
        pairs.append(Pair(item["prompt"].strip(), item["chosen"].strip(), item["rejected"].strip()))
    if not pairs:
        raise StudyGPTError(f"{path}: 一条偏好都没有；每行写一个 {{\"prompt\": …, \"chosen\": …, \"rejected\": …}}。")
    return pairs


# ===== 2. 序列的对数概率 =====
def token_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """每个位置"下一个词元真的是它"的对数概率：input_ids (B, T) → (B, T-1)，第 t 列是 log p(ids[t+1] | ids[:t+1])。

    右侧填充不影响前面的位置（因果掩码：每个位置只看得见它之前的词元），所以不需要注意力掩码。
    第 15 章的强化学习也用它（temperature 与抽样时相同，概率才对得上）。
    """
    core = getattr(model, "module", model)                      # 被 DDP 包起来时，输出层在 .module 上
    hidden = model(input_ids, return_hidden=True)               # (B, T, C)
    logits = core.output(hidden[:, :-1]).float() / temperature  # (B, T-1, V)；fp32 里算 log_softmax 更稳
    targets = input_ids[:, 1:].unsqueeze(-1)                    # (B, T-1, 1)
    return logits.log_softmax(-1).gather(-1, targets).squeeze(-1)


def sequence_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """整段回答的对数概率 log π(y|x)：只把回答的词元（labels != -100）加起来。(B, T) → (B,)。"""
    mask = labels[:, 1:] != IGNORE_INDEX                        # (B, T-1)：与 token_logprobs 错开同样一位
    return (token_logprobs(model, input_ids) * mask).sum(-1)


# ===== 3. DPO 损失 =====
def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """四个 (N,) 的序列对数概率 → (平均损失, 隐式奖励之差 margin (N,))。

    margin = β·[(log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected))]
    loss   = −log σ(margin)：margin 越大损失越小；margin = 0（策略与参考相同）时损失 = log 2。
    """
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -F.logsigmoid(margin).mean(), margin


def preference_accuracy(margin: torch.Tensor) -> float:
    """偏好准确率：隐式奖励 chosen 高于 rejected 的比例；打平 (margin = 0) 记半个——开始时正好是 50%，即瞎猜。"""
    return float(((margin > 0).float() + 0.5 * (margin == 0).float()).mean())


def chosen_nll(policy_chosen: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """chosen 回答每个词元的平均负对数似然（就是 SFT 的损失）：(N,) 的序列对数概率 ÷ 各自的回答词元数，再取平均。"""
    tokens = (labels[:, 1:] != IGNORE_INDEX).sum(-1).clamp(min=1)  # (N,)
    return -(policy_chosen / tokens).mean()


def batch_dpo(model: torch.nn.Module, batch: dict, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """一批偏好对（前 N 行 chosen、后 N 行 rejected，带参考模型的 ref_logps）→
    (策略的序列对数概率 (2N,), 平均 DPO 损失, margin (N,))。训练的目标函数与留出评估都用它。"""
    logps = sequence_logprobs(model, batch["input_ids"], batch["labels"])  # (2N,)
    n = logps.shape[0] // 2
    ref = batch["ref_logps"]
    loss, margin = dpo_loss(logps[:n], logps[n:], ref[:n], ref[n:], beta)
    return logps, loss, margin


class DPOObjective:
    """训练循环的目标函数 (model, batch) → (平均损失, 偏好对数)。

    批次的前一半行是 chosen、后一半是 rejected（一次前向算完两者）；参考模型的对数概率在建数据时
    已经算好放在 batch["ref_logps"] 里——参考模型冻结不变，每步再算一遍是浪费。

    sft_weight（默认 0 = 纯 DPO）：再加 sft_weight × chosen 的 SFT 损失（chosen_nll）。为什么：DPO 只管
    "chosen 比 rejected 高多少"，两者一起往下掉也能把 margin 拉大（似然位移, likelihood displacement）——
    于是好回答本身的概率也变低了，贪心解码反而更常答错。SFT 项把 chosen 的概率往上拉（RPO，Pang 等 2024）。
    """

    def __init__(self, beta: float, sft_weight: float = 0.0):
        if beta <= 0:
            raise StudyGPTError(f"beta={beta} 无效：请用 > 0 的数，例如 0.1。")
        if sft_weight < 0:
            raise StudyGPTError(f"sft_weight={sft_weight} 无效：请用 ≥ 0 的数（0 = 纯 DPO，例如 1.0）。")
        self.beta, self.sft_weight = beta, sft_weight
        self.last: dict = {}  # 最近一批的统计（损失、margin、准确率），给训练时打印、画曲线

    def count(self, batch: dict) -> int:
        return batch["input_ids"].shape[0] // 2

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, int]:
        logps, loss, margin = batch_dpo(model, batch, self.beta)
        n = margin.shape[0]
        self.last = {"loss": float(loss.detach()), "margin": float(margin.detach().mean()), "pref_acc": preference_accuracy(margin)}
        if self.sft_weight:
            nll = chosen_nll(logps[:n], batch["labels"][:n])
            loss = loss + self.sft_weight * nll
            self.last["chosen_nll"] = float(nll.detach())
        return loss, n


# ===== 4. 数据：偏好对 → 批次 =====
def render_pair_rows(pairs: Sequence[Pair], tokenizer: Tokenizer) -> list[tuple[list[int], list[int]]]:
    """每条偏好渲染成两行 (ids, labels)：先全部 chosen，再全部 rejected。labels 只标出回答的词元。"""
    rows = [render_conversation([p.prompt, p.chosen], tokenizer) for p in pairs]
    return rows + [render_conversation([p.prompt, p.rejected], tokenizer) for p in pairs]


def pad_rows(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """右侧填充成 (B, T) 的 input_ids 与 labels（填充位置的标签是 -100，不计入对数概率）。"""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for r, (row_ids, row_labels) in enumerate(rows):
        ids[r, :len(row_ids)] = torch.tensor(row_ids)
        labels[r, :len(row_labels)] = torch.tensor(row_labels)
    return ids, labels


def pair_batch(pairs: Sequence[Pair], tokenizer: Tokenizer, reference: torch.nn.Module) -> dict:
    """一批偏好 → {input_ids (2N, T), labels (2N, T), ref_logps (2N,)}，前 N 行 chosen、后 N 行 rejected。"""
    ids, labels = pad_rows(render_pair_rows(pairs, tokenizer), tokenizer.token_id(PAD))
    device = next(reference.parameters()).device
    with torch.no_grad():
        ref_logps = sequence_logprobs(reference, ids.to(device), labels.to(device)).cpu()
    return {"input_ids": ids, "labels": labels, "ref_logps": ref_logps}


class PairBatches:
    """偏好对的批次，像 PackedBatches 一样可复现、可精确续训：同样的 (seed, epoch) 给出同样的顺序。

    参考模型的对数概率在这里一次算好（每个批次第一次用到时），之后每个 epoch 直接复用。
    """

    def __init__(self, pairs: Sequence[Pair], tokenizer: Tokenizer, reference: torch.nn.Module,
                 batch_size: int = 16, seed: int = 0):
        if not pairs:
            raise StudyGPTError("没有偏好对可以训练。")
        self.pairs, self.tokenizer, self.reference = list(pairs), tokenizer, reference
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self._ref_cache: dict[tuple[int, ...], dict] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs) // self.batch_size  # 丢掉不满的尾巴：每步的偏好对数相同

    def __iter__(self) -> Iterator[dict]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[dict]:
        order = list(range(len(self.pairs)))
        random.Random(self.seed * 100_003 + self.epoch).shuffle(order)  # 每个 epoch 一个新顺序，但可复现
        for b in range(start, len(self)):
            members = tuple(order[b * self.batch_size:(b + 1) * self.batch_size])
            if members not in self._ref_cache:
                self._ref_cache[members] = pair_batch([self.pairs[i] for i in members], self.tokenizer, self.reference)
            yield self._ref_cache[members]


@torch.no_grad()
def evaluate_preferences(model: torch.nn.Module, reference: torch.nn.Module, pairs: Sequence[Pair],
                         tokenizer: Tokenizer, beta: float, batch_size: int = 64) -> dict:
    """在一组（留出的）偏好对上算 DPO 损失、平均 margin 与偏好准确率 (pref_acc)，以及 chosen、rejected 各自的
    对数概率比参考模型变了多少 (chosen_shift, rejected_shift，每条回答的平均)：两者都往下掉就是似然位移。"""
    was_training = model.training
    model.eval()
    margins, shifts = [], []
    for start in range(0, len(pairs), batch_size):
        batch = pair_batch(pairs[start:start + batch_size], tokenizer, reference)
        logps, _, margin = batch_dpo(model, batch, beta)
        margins.append(margin)
        shifts.append((logps - batch["ref_logps"]).view(2, -1))  # 第 0 行 chosen，第 1 行 rejected
    model.train(was_training)
    margin, shift = torch.cat(margins), torch.cat(shifts, dim=1).mean(dim=1)
    return {"loss": float(-F.logsigmoid(margin).mean()), "margin": float(margin.mean()),
            "pref_acc": preference_accuracy(margin), "chosen_shift": float(shift[0]), "rejected_shift": float(shift[1])}


# ===== 5. 内置偏好：可验证任务上的"好回答 vs 坏回答" =====
def builtin_pairs(problems, seed: int = 0) -> list[Pair]:
    """每道题一条偏好：chosen 是标准答案；rejected 轮流是三种常见的坏回答——
    算错（差一个进位：±1、±10、±100）、没写完（截断在半路）、停不下来（同一句又说一遍）。"""
    rng = random.Random(seed)
    pairs = []
    for i, p in enumerate(problems):
        total, head = p.result, f"{p.a}{p.op}{p.b}等于"
        kind = i % 3
        if kind == 0:
            wrong = total + rng.choice([-100, -10, -1, 1, 10, 100])
            rejected = f"{head}{wrong}。"
        elif kind == 1:
            rejected = p.answer[:rng.randint(len(head) - 3, len(p.answer) - 2)]
        else:
            rejected = p.answer + p.answer[:rng.randint(len(head), len(p.answer))]
        pairs.append(Pair(p.question, p.answer, rejected))
    return pairs
