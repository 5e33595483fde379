"""按预算定模型大小 (size the model to the budget)：`studygpt train --preset auto --max-minutes N`。

同样几分钟，模型太大只走得完一小段 epoch，太小又学不下语料。这里先在这台机器上实测，再按一条写明的规则选大小。

一个旋钮 (one knob) depth，像 nanochat 的 --depth：
    d_model = 64·depth · n_layers = depth · n_head = d_model / 32（每头 32 维）· 上下文 max_len = 256

规则 (the rule)：
1. 实测 (probe)：用训练真正会用的精度和真实的批次，给两三个候选大小各训练几步，量出 tokens/s，
   换算成每秒浮点运算 (FLOP/s)；没量的大小按每个词元的计算量 (≈ 6·参数 + 注意力) 在量过的点之间插值。
2. 预算里能训练多少词元：D(depth) = tokens/s × 训练秒数（预算减去实测的时间，再留一成给验证）。
3. 算力最优 (compute-optimal，Chinchilla：Hoffmann et al. 2022)：每个参数约 20 个词元，选 D/N 最接近 20 的大小。
4. 数据够不够 (data-constrained，Muennighoff et al. 2023)：同一份数据重复约 4 个 epoch 以内，几乎和新数据一样有用，
   再往上价值就小得多。算力最优的大小要走超过 4 个 epoch 时，数据才是瓶颈：换成更大的模型，让预算正好走约
   4 个 epoch，并说出要多少倍数据，算力最优的模型才能用满预算。
参数 N 数全部参数（含与输出层共享的词嵌入：它在输出层里每个词元都要算一遍）。
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch

from studygpt.errors import StudyGPTError
from studygpt.hardware import Precision, choose_precision
from studygpt.model.transformer import DialogueModel, ModelConfig, lm_loss
from studygpt.training.trainer import count_real_tokens

CONTEXT = 256            # 家族的上下文长度：对话一轮几十个字，打包后一行放得下好几段
TOKENS_PER_PARAM = 20.0  # Chinchilla 的算力最优比例
MAX_EPOCHS = 4.0         # 重复数据的有用上限（Muennighoff et al. 2023）
DEPTHS = range(1, 17)    # d_model 64 … 1024
VALIDATION_SHARE = 0.1   # 训练中验证大约占的时间
PROBE_SHARE = 0.04       # 实测最多花预算的 4%


def family_config(depth: int, vocab_size: int) -> ModelConfig:
    """depth → 模型设置：d_model = 64·depth，depth 层，每头 32 维，上下文 256。"""
    d_model = 64 * depth
    return ModelConfig(vocab_size=vocab_size, d_model=d_model, n_head=d_model // 32, n_layers=depth, max_len=CONTEXT)


def param_count(config: ModelConfig) -> int:
    """参数量（不建模型）：词嵌入（与输出层共享）+ 每层注意力 4·C² + SwiGLU 3·C·H + 两个 RMSNorm，再加最后的 RMSNorm。"""
    c, h = config.d_model, config.ffn_hidden
    return config.vocab_size * c + config.n_layers * (4 * c * c + 3 * c * h + 2 * c) + c


def flops_per_token(config: ModelConfig) -> float:
    """训练一个词元的浮点运算：6·N（前向 2·N + 反向 4·N）+ 注意力的 QKᵀ 与 AV（12·层数·上下文·C，同 nanoGPT 的 MFU 公式）。"""
    return 6 * param_count(config) + 12 * config.n_layers * config.max_len * config.d_model


def learning_rate(d_model: int) -> float:
    """越宽越小：tiny（d_model 128）用 3e-3，按 1/√宽度 缩小（256 约 2.1e-3，512 约 1.5e-3）。"""
    return 3e-3 * math.sqrt(128 / d_model)


@dataclass
class Probe:
    depth: int
    tokens_per_s: float
    flops_per_s: float
    seconds: float


def measure_throughput(config: ModelConfig, batches: Iterable[dict], device: torch.device, seconds: float,
                       precision: Precision) -> tuple[float, float]:
    """在真实的批次上训练几步（和训练同样的精度、AdamW、反向传播），返回 (tokens/s, 用掉的秒数)。
    第一步是热身，不计时；之后至少计两步，直到用满 seconds。"""
    start = time.perf_counter()
    torch.manual_seed(0)
    model = DialogueModel(config=config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ctx = torch.autocast(device.type, dtype=precision.dtype) if precision.dtype else nullcontext()
    tokens, timed, steps = 0, 0.0, 0
    for i, batch in enumerate(batches):
        batch = {k: v.to(device) for k, v in batch.items()}
        t0 = time.perf_counter()
        with ctx:
            loss, _ = lm_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:  # 第 0 步是热身
            timed += time.perf_counter() - t0
            tokens += count_real_tokens(batch)
            steps += 1
        if steps >= 2 and time.perf_counter() - start >= seconds:
            break
    if steps == 0:
        raise StudyGPTError("实测速度需要至少 3 个批次；训练数据太少，请多给些数据或用 --preset tiny。")
    return tokens / timed, time.perf_counter() - start


def interpolate_flops(probes: list[Probe], depth: int) -> float:
    """没量过的大小：FLOP/s 在量过的点之间按每词元计算量的对数线性插值，两头取最近的实测值。"""
    points = sorted(probes, key=lambda p: p.depth)
    if depth <= points[0].depth:
        return points[0].flops_per_s
    if depth >= points[-1].depth:
        return points[-1].flops_per_s
    for lo, hi in zip(points, points[1:]):
        if lo.depth <= depth <= hi.depth:
            t = (depth - lo.depth) / (hi.depth - lo.depth)
            return math.exp((1 - t) * math.log(lo.flops_per_s) + t * math.log(hi.flops_per_s))
    raise AssertionError("unreachable")


@dataclass
class Choice:
    """选了多大、为什么：打印出来，也存进运行设置 (RunSpec.sizing)，续训时原样沿用。"""
    depth: int
    params: int
    budget_minutes: float
    train_tokens: float           # 预算里预计训练的词元
    corpus_tokens: int            # 语料每个 epoch 的词元
    compute_optimal_depth: int
    data_limited: bool
    more_data: float              # 数据是瓶颈时：要多少倍数据，算力最优的模型才能用满预算
    probes: list[dict]
    probe_seconds: float
    device: str

    @property
    def epochs(self) -> float:
        return self.train_tokens / max(self.corpus_tokens, 1)

    def model(self) -> dict:
        c = family_config(self.depth, vocab_size=1)
        return {"d_model": c.d_model, "n_head": c.n_head, "n_layers": c.n_layers, "max_len": c.max_len}

    def lines(self) -> list[str]:
        c = self.model()
        probes = " · ".join(f"depth {p['depth']} {p['tokens_per_s']:,.0f} tokens/s" for p in self.probes)
        out = [f"按预算定大小 (auto size): depth {self.depth} → d_model {c['d_model']} · {c['n_layers']} 层 · "
               f"{c['n_head']} 头 · 上下文 {c['max_len']} · {self.params / 1e6:.2f}M 参数",
               f"  实测 (probe, {self.probe_seconds:.0f} 秒, {self.device}): {probes}",
               f"  预算 {self.budget_minutes:g} 分钟 ≈ {self.train_tokens / 1e6:.2f}M 个词元 = {self.epochs:.1f} 个 epoch"
               f"（语料每 epoch {self.corpus_tokens / 1e6:.2f}M 个词元），每个参数 {self.train_tokens / self.params:.1f} 个词元"]
        if self.data_limited:
            out += [f"  理由 (why): 算力最优（每个参数约 {TOKENS_PER_PARAM:g} 个词元）是 depth {self.compute_optimal_depth}，"
                    f"可它要把语料重复 {MAX_EPOCHS:g} 个 epoch 以上（重复多了价值变小，Muennighoff et al. 2023）：",
                    f"  数据才是瓶颈 (data-limited)，所以选更大的 depth {self.depth}，预算正好走约 {self.epochs:.1f} 个 epoch。"
                    f"再多约 {self.more_data:.1f} 倍数据，算力最优的模型就能用满预算。"]
        else:
            out += [f"  理由 (why): 算力最优，每个参数约 {TOKENS_PER_PARAM:g} 个词元（Hoffmann et al. 2022）；"
                    f"语料够用（{self.epochs:.1f} ≤ {MAX_EPOCHS:g} 个 epoch），时间才是瓶颈 (compute-limited)。"]
        return out


def choose_depth(probes: list[Probe], vocab_size: int, train_seconds: float, corpus_tokens: int) -> tuple[int, int, bool, float]:
    """规则 3–4：返回 (选的 depth, 算力最优的 depth, 是否数据是瓶颈, 要多少倍数据)。"""
    def tokens(depth: int) -> float:
        config = family_config(depth, vocab_size)
        return interpolate_flops(probes, depth) / flops_per_token(config) * train_seconds

    def ratio_gap(depth: int) -> float:  # D/N 离 20 有多远（按对数）
        return abs(math.log(tokens(depth) / param_count(family_config(depth, vocab_size)) / TOKENS_PER_PARAM))

    optimal = min(DEPTHS, key=ratio_gap)
    limit = MAX_EPOCHS * corpus_tokens
    if tokens(optimal) <= limit:
        return optimal, optimal, False, 1.0
    bigger = [d for d in DEPTHS if d > optimal and tokens(d) <= limit]
    return (bigger[0] if bigger else DEPTHS[-1]), optimal, True, tokens(optimal) / limit


def size_for_budget(batches: Callable[[], Iterable[dict]], vocab_size: int, corpus_tokens: int, minutes: float,
                    device: torch.device, use_amp: bool = True, measure=measure_throughput) -> Choice:
    """实测 → 规则 → Choice。batches() 每次给一个新的批次迭代器（真实的训练批次）；measure 可以换成假的（测试用）。

    先量 depth 2（便宜），按它猜一个大小；猜的不是 2 就再量猜的那个（和它旁边的），最后按全部实测点再算一遍。
    """
    budget = minutes * 60
    probe_budget = PROBE_SHARE * budget
    start = time.perf_counter()
    precision = choose_precision(device, use_amp)  # 只测一次（它自己要做两次矩阵乘法计时），每个候选都用它
    probes: list[Probe] = []
    spent = time.perf_counter() - start  # 也算进实测花的时间

    def probe(depth: int) -> None:
        nonlocal spent
        if any(p.depth == depth for p in probes):
            return
        config = family_config(depth, vocab_size)
        per_probe = max(probe_budget / 3, 0.5)
        tokens_per_s, seconds = measure(config, batches(), device, per_probe, precision)
        spent += seconds
        probes.append(Probe(depth, tokens_per_s, tokens_per_s * flops_per_token(config), seconds))

    def train_seconds() -> float:
        return max(budget - spent, 1.0) * (1 - VALIDATION_SHARE)

    probe(2)
    guess, *_ = choose_depth(probes, vocab_size, train_seconds(), corpus_tokens)
    if guess != 2 and spent < probe_budget:
        probe(guess)
    depth, optimal, data_limited, more = choose_depth(probes, vocab_size, train_seconds(), corpus_tokens)
    config = family_config(depth, vocab_size)
    train_tokens = interpolate_flops(probes, depth) / flops_per_token(config) * train_seconds()
    return Choice(depth, param_count(config), minutes, train_tokens, corpus_tokens, optimal, data_limited, more,
                  [asdict(p) for p in probes], spent, str(device))
