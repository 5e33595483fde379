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
5. 编译划不划算 (torch.compile)：对选好的大小，实测编译要多久、编译后每秒多少词元，
   (训练秒数 − 编译秒数) × 编译后的 tokens/s > 训练秒数 × 不编译的 tokens/s 才编译（compile_pays）；
   编译了，就按编译后的速度再走一遍规则 2–4（能训练的词元多了，大小与"数据够不够"可能跟着变）。
   编译要先花几十秒：预算短到连实测编译都放不进预算的 5% 时，不实测也不编译，并说出来。
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
from studygpt.hardware import Precision, choose_precision, has_cpp_compiler
from studygpt.model.scoring import lm_loss
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.training.trainer import count_real_tokens

CONTEXT = 256            # 家族的上下文长度：对话一轮几十个字，打包后一行放得下好几段
TOKENS_PER_PARAM = 20.0  # Chinchilla 的算力最优比例
MAX_EPOCHS = 4.0         # 重复数据的有用上限（Muennighoff et al. 2023）
DEPTHS = range(1, 17)    # d_model 64 … 1024
VALIDATION_SHARE = 0.1   # 训练中验证大约占的时间
PROBE_SHARE = 0.04       # 实测大小最多花预算的 4%
MAX_PROBES = 3           # 最多量几个大小（每个约花 PROBE_SHARE 的三分之一）
PROBE_LIMIT = 0.05       # 连同实测编译，一共最多花预算的 5%（第 28 号问题的目标）
# 实测编译之前估计它要多久（秒，含编译后计时的两步），只用来决定量不量：一个常数，每层再加一点。
# 取得偏大（2 核 CPU 上、机器忙时量的数），宁可少量几次，也不让实测超过 5%
COMPILE_GUESS_BASE_S = 15.0
COMPILE_GUESS_PER_LAYER_S = 4.0


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


def timed_steps(config: ModelConfig, batches: Iterable[dict], device: torch.device, seconds: float,
                precision: Precision, compiled: bool = False) -> tuple[float, float, float, float]:
    """在真实的批次上训练几步（和训练同样的精度、AdamW、反向传播），返回
    (tokens/s, 第一步的秒数, 之后平均每步的秒数, 一共用掉的秒数)。
    第一步是热身（compiled=True 时就是编译），不计入 tokens/s；之后至少计两步，直到用满 seconds。"""
    start = time.perf_counter()
    torch.manual_seed(0)
    model = DialogueModel(config=config).to(device)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ctx = torch.autocast(device.type, dtype=precision.dtype) if precision.dtype else nullcontext()
    tokens, timed, steps, first = 0, 0.0, 0, 0.0
    for i, batch in enumerate(batches):
        batch = {k: v.to(device) for k, v in batch.items()}
        t0 = time.perf_counter()
        with ctx:
            loss, _ = lm_loss(forward, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i == 0:
            first = time.perf_counter() - t0
        else:
            timed += time.perf_counter() - t0
            tokens += count_real_tokens(batch)
            steps += 1
        if steps >= 2 and time.perf_counter() - start >= seconds:
            break
    if steps == 0:
        raise StudyGPTError("实测速度需要至少 3 个批次；训练数据太少，请多给些数据或用 --preset tiny。")
    return tokens / timed, first, timed / steps, time.perf_counter() - start


def measure_throughput(config: ModelConfig, batches: Iterable[dict], device: torch.device, seconds: float,
                       precision: Precision) -> tuple[float, float]:
    """不编译的速度：返回 (tokens/s, 用掉的秒数)。"""
    tokens_per_s, _, _, spent = timed_steps(config, batches, device, seconds, precision)
    return tokens_per_s, spent


def measure_compiled(config: ModelConfig, batches: Iterable[dict], device: torch.device, seconds: float,
                     precision: Precision) -> tuple[float, float, float]:
    """编译的代价与速度：返回 (编译花的秒数, 编译后的 tokens/s, 用掉的秒数)。
    编译花的 = 第一步的时间 − 编译后一步的时间（那一步本来也要走）。编译失败时抛出原来的异常。"""
    tokens_per_s, first, step, spent = timed_steps(config, batches, device, seconds, precision, compiled=True)
    return max(first - step, 0.0), tokens_per_s, spent


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


def compile_guess_seconds(config: ModelConfig) -> float:
    """量之前估计编译要多久：层越多，要编译的图越大。只用来决定值不值得实测编译。"""
    return COMPILE_GUESS_BASE_S + COMPILE_GUESS_PER_LAYER_S * config.n_layers


def compile_probe_fits(budget_s: float, spent_s: float, guess_s: float) -> bool:
    """实测编译（估计要 guess_s 秒）加上已经花掉的 spent_s，还在预算的 PROBE_LIMIT（5%）以内吗？"""
    return spent_s + guess_s <= PROBE_LIMIT * budget_s


def tokens_either_way(train_s: float, compile_s: float, eager_tokens_per_s: float,
                      compiled_tokens_per_s: float) -> tuple[float, float]:
    """train_s 秒里能训练多少词元：(不编译, 先花 compile_s 秒编译再训练)。"""
    return train_s * eager_tokens_per_s, max(train_s - compile_s, 0.0) * compiled_tokens_per_s


def compile_pays(train_s: float, compile_s: float, eager_tokens_per_s: float, compiled_tokens_per_s: float) -> bool:
    """编译划算吗：先花 compile_s 秒编译，剩下的时间用编译后的速度训练，比整段时间都不编译训练的词元多。
    train_s 是实测（含实测编译）之后剩下的训练时间；训练时按再付一次编译时间算（偏保守：同一个进程里
    编译好的代码会被重用，训练真正再付的通常少得多）。"""
    eager, compiled = tokens_either_way(train_s, compile_s, eager_tokens_per_s, compiled_tokens_per_s)
    return compiled > eager


def compile_speed_up(measured: dict) -> float:
    """实测编译的数（decide_compile 返回的 dict）→ 编译后快了几倍。"""
    return measured["compiled_tokens_per_s"] / measured["eager_tokens_per_s"]


def compile_reason(on: bool, train_s: float, compile_s: float, eager_tokens_per_s: float,
                   compiled_tokens_per_s: float) -> str:
    """compile_pays 的结论写成一句话：两边各能训练多少词元。"""
    eager, compiled = tokens_either_way(train_s, compile_s, eager_tokens_per_s, compiled_tokens_per_s)
    verdict = "编译划算" if on else "编译不划算"
    return (f"{verdict}：编译 {compile_s:.0f} 秒，之后 {compiled_tokens_per_s:,.0f} vs 不编译 {eager_tokens_per_s:,.0f} tokens/s"
            f"（{compiled_tokens_per_s / eager_tokens_per_s:.2f}×）；{train_s:.0f} 秒里 {compiled / 1e6:.2f}M vs {eager / 1e6:.2f}M 个词元")


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
    compile: bool = False         # 训练用不用 torch.compile（规则 5），写进 RunSpec.train["compile"]
    compile_reason: str = ""
    compile_probe: dict | None = None  # 实测了编译时：compile_s、eager / compiled tokens/s

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
        out.append(f"  编译 (torch.compile): {'开 (on)' if self.compile else '不开 (off)'} — {self.compile_reason}")
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


def training_seconds(budget_s: float, spent_s: float) -> float:
    """预算里真正训练的秒数：减去实测花掉的，再留一成给验证。"""
    return max(budget_s - spent_s, 1.0) * (1 - VALIDATION_SHARE)


def decide_compile(config: ModelConfig, batches: Iterable[dict], device: torch.device, precision: Precision,
                   budget_s: float, spent_s: float, eager_tokens_per_s: float,
                   measure_compile=measure_compiled) -> tuple[bool, str, dict | None, float]:
    """规则 5：给选好的大小决定编不编译。返回 (编不编译, 理由, 实测编译的数或 None, 实测编译用掉的秒数)。
    用不了或不值得实测时不编译，并说出原因；编译出错也只说一句，不抛出。"""
    if device.type == "cpu" and not has_cpp_compiler():
        return False, "没有 C++ 编译器 (g++)，CPU 上的 torch.compile 用不了（装了 g++ 再试）", None, 0.0
    guess = compile_guess_seconds(config)
    if not compile_probe_fits(budget_s, spent_s, guess):
        return False, (f"预算太短：实测编译估计要约 {guess:.0f} 秒，会让实测超过预算的 {PROBE_LIMIT:.0%}，"
                       f"所以不实测、不编译"), None, 0.0
    start = time.perf_counter()
    try:
        compile_s, compiled_tokens_per_s, _ = measure_compile(config, batches, device, 0.5, precision)
    except Exception as e:  # 编译器缺失、版本不兼容……：一句话，然后照常不编译地训练
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        return False, f"torch.compile 失败（{type(e).__name__}: {first}），不编译", None, time.perf_counter() - start
    seconds = time.perf_counter() - start
    train_s = training_seconds(budget_s, spent_s + seconds)
    on = compile_pays(train_s, compile_s, eager_tokens_per_s, compiled_tokens_per_s)
    measured = {"compile_s": compile_s, "eager_tokens_per_s": eager_tokens_per_s,
                "compiled_tokens_per_s": compiled_tokens_per_s, "seconds": seconds}
    return on, compile_reason(on, train_s, compile_s, eager_tokens_per_s, compiled_tokens_per_s), measured, seconds


def size_for_budget(batches: Callable[[], Iterable[dict]], vocab_size: int, corpus_tokens: int, minutes: float,
                    device: torch.device, use_amp: bool = True, measure=measure_throughput,
                    compile: bool | None = None, measure_compile=measure_compiled) -> Choice:
    """实测 → 规则 → Choice。batches() 每次给一个新的批次迭代器（真实的训练批次）；measure 与 measure_compile
    可以换成假的（测试用）。compile：True/False = 使用者定了（--compile），不实测编译；None = 按规则 5 决定。

    先量 depth 2（便宜），按它选一个大小；选中的没量过就量它，按全部实测点再选一次，直到选中的正是量过的大小
    （最多量 MAX_PROBES 个，都在实测预算之内）。这样训练用的大小，它的速度是量出来的，不是插值猜的。
    大小定了，再决定编不编译。
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
        return training_seconds(budget, spent)

    probe(2)
    depth, optimal, data_limited, more = choose_depth(probes, vocab_size, train_seconds(), corpus_tokens)
    # 选中的大小没量过，它的速度就只是插值（大矩阵在 CPU 上往往更快，插值偏保守）：量它，按全部实测点再选，
    # 直到选中的正是量过的大小，或者实测的预算用完
    while all(p.depth != depth for p in probes) and spent < probe_budget and len(probes) < MAX_PROBES:
        probe(depth)
        depth, optimal, data_limited, more = choose_depth(probes, vocab_size, train_seconds(), corpus_tokens)
    config = family_config(depth, vocab_size)
    if compile is None:
        eager_tokens_per_s = interpolate_flops(probes, depth) / flops_per_token(config)
        use_compile, reason, measured, seconds = decide_compile(config, batches(), device, precision, budget, spent,
                                                                eager_tokens_per_s, measure_compile)
        spent += seconds
    else:
        use_compile, reason, measured = compile, f"你给了 --compile {str(compile).lower()}，不实测", None
    speeds, seconds_left = probes, train_seconds()
    if use_compile and measured:
        # 编译后更快，预算里能训练的词元更多：按实测的倍数加快每个大小（只量了选中的那个），扣掉（再付一次的）编译时间，
        # 再按规则 3–4 选一次（更多的词元可能让最优的大小变大，或让数据成为瓶颈）
        speed_up = compile_speed_up(measured)
        speeds = [Probe(p.depth, p.tokens_per_s * speed_up, p.flops_per_s * speed_up, p.seconds) for p in probes]
        seconds_left = max(seconds_left - measured["compile_s"], 1.0)
        depth, optimal, data_limited, more = choose_depth(speeds, vocab_size, seconds_left, corpus_tokens)
        config = family_config(depth, vocab_size)
    train_tokens = interpolate_flops(speeds, depth) / flops_per_token(config) * seconds_left
    return Choice(depth, param_count(config), minutes, train_tokens, corpus_tokens, optimal, data_limited, more,
                  [asdict(p) for p in probes], spent, str(device), use_compile, reason, measured)
