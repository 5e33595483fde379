"""编译的逐词解码 (compiled decoding)：把"再生成一个词元"的整步编译成一个 C++/Triton 内核。

为什么需要它：批大小 1 时，每生成一个词元都要把全部权重从内存读一遍（study 预设约 72 MB），
所以速度的上限是内存带宽 (memory bandwidth)，不是算力。普通路径（generation/generate.py 的 decode_one_token）
每层要调十几个小算子，每个都有几微秒的调度开销，还要唤醒线程；向量×矩阵交给 BLAS，读权重也不够快。
所以普通路径离"权重流上限"还很远；编译路径快得多（实测见 docs/performance.md）。

这里用 torch.compile（inductor 后端）把整步编成一个内核，做这几件事：
1. 原地用缓存：KVCache 本来就是 (B, nh, max_len, hs) 的固定大小张量，新词元的 k/v 直接写进第 pos 个位置
   （写法 cache[:, :, pos] = k 让 inductor 原地写，不会把整个缓存复制一遍）。
2. 向量×矩阵写成 (x * W).sum(-1)：inductor 为它生成一个按行、连续地流式读取权重的归约循环，
   和 RMSNorm、残差、RoPE、SiLU、注意力放进同一个内核，不再一个个调 BLAS。因此权重要按行优先
   (row-major) 存放，见 compile_decoding。每个矩阵再按行切成 4 块，让每个线程同时读 4 段内存（见 vector_matrix）。
3. 可变长度 (dynamic shape)：缓存里已有 n 个词元，注意力只读前 n 个位置。n 每步加一，
   编译时把它当作符号 n 而不是具体的数，所以编译一次就能一直用到 max_len，不必每步重编。
4. 抽样也放进同一个内核（decode_and_sample）：解码之后接着做重复惩罚、温度、top-k/top-p 与逆变换抽样，
   省掉之后二十来个"冷"的小算子调用。

数学与 model/transformer.py、generation/generate.py 完全相同，tests/test_fast_decode.py 逐步比较两条路径的 logits 与抽出的词元。
用法：compile_decoding(model) 把编译好的解码器挂在这个模型对象上（model.compiled_decoder），之后
generation/generate.py 的 decode_and_choose（生成循环）与 decode_one_token 自动走这里（见 generate.compiled_decoder_for）；
命令行里是 `studygpt chat --compile`。第一次编译要十几秒到一分钟（之后 inductor 有磁盘缓存）。

形状记号：B 批大小 (batch) · T 序列长度 (time) · C 通道 (d_model) · nh 头数 · hs 每头维度 · V 词表大小
"""
from __future__ import annotations

import functools
import math
import time

import torch
import torch.nn.functional as F

from studygpt.errors import StudyGPTError
from studygpt.generation.generate import (
    SamplingConfig,
    filter_logits,
    inverse_cdf,
    penalize,
)
from studygpt.hardware import has_cpp_compiler
from studygpt.model.kv_cache import KVCache
from studygpt.model.transformer import DialogueModel, apply_rope


def vector_matrix(x: torch.Tensor, weight: torch.Tensor, streams: int = 4) -> torch.Tensor:
    """x (..., in) × weight (out, in)ᵀ → (..., out)，写成逐元素乘再求和。

    直接运行会先造出一个 (out, in) 的临时张量，很浪费；编译后它变成一个不落地的归约循环：
    每个输出读一整行权重，行优先存放时就是连续地读内存，这正是带宽受限时该有的读法。
    再把矩阵按行切成 streams 块：几块的归约互不依赖，inductor 把它们放进同一个循环，每个线程于是同时读
    几段连续内存（几个"内存流"），路上同时有更多内存请求 (memory-level parallelism)。只读一段时，
    一个核等不满内存带宽；切成 4 块在我们测过的机器上最好（docs/performance.md）。
    """
    return torch.cat([(x.unsqueeze(-2) * rows).sum(-1) for rows in weight.chunk(streams, dim=0)], dim=-1)


def decode_step(token, pos, positions, embedding, final_norm, layers, cache_k, cache_v, rope_cos, rope_sin, *,
                n_head: int, hidden: int, eps: float) -> torch.Tensor:
    """一个新词元穿过整个模型：返回它的 logits (V,)，并把它的 k/v 写进缓存。

    token: (1,) 整数张量；pos: (1,) 新词元的位置；positions: (n,) = 0, 1, …, n-1，注意力读缓存的前 n 个位置，
    只看 ≤ pos 的那些。CPU 上 n = pos + 1（每步加一，编译成可变长度）；GPU 上 n = max_len 固定不变
    （形状不变才能录成一个 CUDA graph），pos 之后的位置由掩码挡住；
    layers: 每层一组 (attention_norm, wqkv, wo, ffn_norm, w13, w2) 权重；
    cache_k/cache_v: 每层一个 (1, nh, max_len, hs) 张量（就是 KVCache 的 k/v，原地写入）。
    每一行都对应 model/transformer.py 里的一段：Block.forward、Attention.forward、MLP.forward。
    """
    C = embedding.shape[1]
    n, hs = positions.shape[0], C // n_head
    visible = positions <= pos                                     # (n,)：CPU 上全是 True
    x = embedding[token]                                           # (1, C)
    cos, sin = rope_cos[pos], rope_sin[pos]                        # (1, hs/2)，广播到每个头
    for (attention_norm, wqkv, wo, ffn_norm, w13, w2), k_cache, v_cache in zip(layers, cache_k, cache_v):
        # ----- 注意力 (attention)：x + Attn(Norm(x)) -----
        h = F.rms_norm(x, (C,), attention_norm, eps)
        q, k, v = vector_matrix(h, wqkv).view(3, n_head, hs).unbind(0)  # 各 (nh, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k_cache[:, :, pos] = k.view(1, n_head, 1, hs)              # 原地写入位置 pos（不复制整个缓存）
        v_cache[:, :, pos] = v.view(1, n_head, 1, hs)
        # 注意力也写成乘再求和（与 model.manual_attention 相同），inductor 把它和前后的运算放进同一个内核
        # 只读前 n 个位置：CPU 上 n 每步加一，编译时当作可变长度 (dynamic shape)
        scores = (k_cache[0, :, :n] * q.unsqueeze(1)).sum(-1) / math.sqrt(hs)  # (nh, n)
        weights = scores.masked_fill(~visible, float("-inf")).softmax(-1)
        y = (weights.unsqueeze(-1) * v_cache[0, :, :n]).sum(1)                # (nh, hs)
        x = x + vector_matrix(y.reshape(1, C), wo)                         # 各头拼回 (1, C)
        # ----- 前馈 (SwiGLU)：x + MLP(Norm(x)) -----
        h = F.rms_norm(x, (C,), ffn_norm, eps)
        gate, up = vector_matrix(h, w13).split(hidden, dim=-1)     # 各 (1, hidden)
        x = x + vector_matrix(F.silu(gate) * up, w2)
    x = F.rms_norm(x, (C,), final_norm, eps)
    return vector_matrix(x, embedding)[0]                          # 输出层与嵌入共享矩阵：(V,)


def decode_and_sample(token, pos, positions, embedding, final_norm, layers, cache_k, cache_v, rope_cos, rope_sin,
                      seen, u, knobs, greedy: bool, top_k: int | None, use_top_p: bool, *,
                      n_head: int, hidden: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """decode_step 之后接着选出下一个词元，与 generate.choose 同样的数学，但都在同一个内核里。

    seen: (V,) 布尔张量，本次回答里出现过的词元（重复惩罚用）；u: (1,) 均匀随机数（贪心时不用）；
    knobs: (3,) 张量 = (重复惩罚, 温度, top_p)。数值放在张量里，编译器就不会把它们当常数写死：改了不必重编。
    greedy、top_k 与 use_top_p 决定图的"形状"（做不做哪一步），换了才重编（top_k 第二次换值后变成可变的）。
    返回 (下一个词元 (1,), 真正用来抽样的分布 probs (V,))。
    为什么要并进来：解码刚把几十 MB 权重流过缓存，之后再一个个调抽样的小算子，每个都是"冷"的，
    二十来个加起来占一个词元时间不小的一部分。
    """
    logits = decode_step(token, pos, positions, embedding, final_norm, layers, cache_k, cache_v, rope_cos, rope_sin,
                         n_head=n_head, hidden=hidden, eps=eps).float()
    penalty, temperature, top_p = knobs.unbind()
    # 重复惩罚（与 generate.apply_repetition_penalty 同一条规则），用掩码代替编号列表：形状固定，不必每步重编
    logits = torch.where(seen, penalize(logits, penalty), logits)
    if greedy:
        return logits.argmax(-1, keepdim=True), logits.softmax(-1)
    final = filter_logits(logits, temperature, top_k, top_p if use_top_p else None)
    return inverse_cdf(final, u), final.softmax(-1)


class CompiledDecoder:
    """编译好的 decode_step / decode_and_sample，加上调用它们所需的准备：权重、位置张量、推进缓存长度。

    GPU 上再多一步：用 torch.compile 的 "reduce-overhead" 模式把整步录成一个 CUDA graph，之后每个词元只"重放"
    一次，省掉几百次内核启动 (kernel launch) 的开销——批大小 1 时，GPU 大部分时间花在等 CPU 发下一个内核上。
    CUDA graph 要求每次的形状和内存地址都不变，所以 GPU 上注意力读满 max_len 个位置（掩码挡住 pos 之后的），
    KV 缓存也换成这里固定的一份（bind_cache）。
    """

    def __init__(self, model: DialogueModel):
        cfg = model.config
        device = model.rope_cos.device
        self.cuda_graphs = device.type == "cuda"
        if not self.cuda_graphs and not has_cpp_compiler():  # CPU 内核与 C++ 包装都要编译
            raise StudyGPTError("--compile 需要 C++ 编译器 (g++)：请先安装，例如 `apt install g++`，或去掉 --compile。")
        if cfg.max_len < 4:
            raise StudyGPTError(f"编译的解码需要 max_len ≥ 4（现在是 {cfg.max_len}）。")
        self.model = model
        self.positions = torch.arange(cfg.max_len, device=device)
        self.params = self.weights()
        self.static_cache: KVCache | None = None  # GPU：CUDA graph 读写的那一份缓存（地址固定）
        shape = dict(n_head=cfg.n_head, hidden=cfg.ffn_hidden, eps=cfg.norm_eps)
        if self.cuda_graphs:
            compile_args = {"mode": "reduce-overhead"}
            self.static_cache = KVCache(cfg, 1, device, model.tok_embeddings.weight.dtype)
            for t in self.static_cache.k + self.static_cache.v:  # 当作参数一样的固定地址：图里可以原地写它
                torch._dynamo.mark_static_address(t)
        else:
            # fullgraph：整步必须编成一个图，做不到就报错。另外两项省掉每步调用时的 Python 开销：
            # size_asserts=False 不再逐个核对输入的形状与步长（dynamo 的守卫 (guards) 已经查过）；
            # cpp_wrapper=True 用 C++ 而不是 Python 来分配中间张量、调用内核。
            compile_args = {"options": {"size_asserts": False, "cpp_wrapper": True}}
        # 采样设置里的小数（温度、惩罚、top_p）编译成输入，改它们不会重编；贪心与否、有没有 top-k/top-p 换了才重编。
        self.step = torch.compile(functools.partial(decode_step, **shape), fullgraph=True, **compile_args)
        self.step_and_sample = torch.compile(functools.partial(decode_and_sample, **shape), fullgraph=True,
                                             **compile_args)

    def weights(self) -> tuple:
        """按 decode_step 要的顺序排好的权重。存的是 nn.Parameter 对象本身：load_state_dict 与 p.data = … 都原地改它们，
        这里自然看到新值；每步现取要访问几十次模块属性，所以只取一次。"""
        m = self.model
        layers = tuple((b.attention_norm.weight, b.attention.wqkv.weight, b.attention.wo.weight,
                        b.ffn_norm.weight, b.feed_forward.w13.weight, b.feed_forward.w2.weight) for b in m.layers)
        return m.tok_embeddings.weight, m.norm.weight, layers

    def handles(self, cache: KVCache) -> bool:
        """这一步能不能走编译路径：批大小 1，缓存里已有词元（先 prefill），且新词元之后缓存还没满。

        缓存恰好写满的最后一步 (n == max_len) 交给普通路径：那时"前 n 个位置"就是整个缓存，
        编译器会把它当成另一种形状再编译一次（十几秒），只为一个词元不值得。
        """
        return cache.k[0].shape[0] == 1 and 1 <= cache.length and cache.length + 1 < self.model.config.max_len

    def bind_cache(self, cache: KVCache) -> None:
        """GPU：让 cache 用这里地址固定的那一份张量（先把已有的内容抄过去）。每次生成绑定一次；
        同一时间只能有一个生成在用编译的解码（聊天、命令行正是这样；服务器用 serve/batcher.py，不走这里）。"""
        if cache.k[0] is self.static_cache.k[0]:
            return
        for mine, theirs in zip(self.static_cache.k + self.static_cache.v, cache.k + cache.v):
            mine.copy_(theirs)
        cache.k, cache.v = list(self.static_cache.k), list(self.static_cache.v)

    def inputs(self, token_id: int, cache: KVCache) -> tuple:
        """两个编译函数共同的前几个参数：新词元、它的位置、能看到的位置、权重、缓存、RoPE 表。"""
        if not self.handles(cache):
            raise StudyGPTError("编译的解码只处理批大小 1、缓存非空且未满的情况；其余请用 generate.decode_one_token。")
        device = self.positions.device
        token = torch.tensor([token_id], device=device)
        pos = torch.tensor([cache.length], device=device)
        if self.cuda_graphs:
            self.bind_cache(cache)
            positions = self.positions  # 形状固定：一个 CUDA graph 用到底
        else:
            positions = self.positions[:cache.length + 1]  # 0..pos：新词元能看到的位置
            # 长度每步加一：编译成可变长度 n（2 ≤ n < max_len），不必每步重编
            torch._dynamo.mark_dynamic(positions, 0, min=2, max=self.model.config.max_len - 1)
        embedding, final_norm, layers = self.params
        return (token, pos, positions, embedding, final_norm, layers, cache.k, cache.v,
                self.model.rope_cos, self.model.rope_sin)

    @torch.inference_mode()
    def __call__(self, token_id: int, cache: KVCache) -> torch.Tensor:
        """与 generate.decode_one_token 相同：算一个新词元、写进缓存，返回 logits (V,)。"""
        logits = self.step(*self.inputs(token_id, cache))
        cache.length += 1
        return logits.clone() if self.cuda_graphs else logits  # CUDA graph 的输出在下一次重放时会被覆盖

    @torch.inference_mode()
    def decode_and_choose(self, token_id: int, cache: KVCache, cfg: SamplingConfig, previous,
                          generator: torch.Generator | None) -> tuple[int, torch.Tensor]:
        """与 generate.decode_and_choose 相同：返回 (下一个词元, probs (V,))；随机数的用法也相同（贪心时不抽）。"""
        inputs = self.inputs(token_id, cache)
        device = self.positions.device
        seen = torch.zeros(self.model.config.vocab_size, dtype=torch.bool, device=device)
        if previous:
            seen[torch.tensor(previous, device=device)] = True
        greedy = cfg.temperature == 0
        u = torch.zeros(1, device=device) if greedy else torch.rand(1, generator=generator, device=device)
        top_k, top_p = cfg.active_filters(self.model.config.vocab_size)
        knobs = torch.tensor([cfg.repetition_penalty, cfg.temperature, top_p or 1.0], device=device)
        token, probs = self.step_and_sample(*inputs, seen, u, knobs, greedy, top_k, top_p is not None)
        cache.length += 1
        return int(token), probs.clone() if self.cuda_graphs else probs


def compile_decoding(model: DialogueModel, sampling: SamplingConfig | None = None) -> DialogueModel:
    """让这个模型之后的逐词解码走编译路径（原地修改并返回 model）。

    sampling：将要用的采样设置，先按它编译好（默认 SamplingConfig()）；之后换成不同"形状"的设置
    （贪心 ↔ 抽样、加上或去掉 top-k/top-p）会在第一次用到时再编译一次。
    权重改为行优先存放（形状与数值不变，只是内存里的顺序）：编译出的归约循环按行连续读权重最快。
    普通路径对行优先权重也照样正确，只是逐词生成慢一些（见 inference.column_major_weights）；训练不受影响。
    """
    for p in model.parameters():
        p.data = p.data.contiguous()
    decoder = CompiledDecoder(model)
    # 先用一个空白缓存走一步，让编译现在就发生（torch.compile 是懒的，否则第一句回答要等很久），出错也现在报
    cache = KVCache(model.config, 1, model.rope_cos.device, model.tok_embeddings.weight.dtype)
    cache.length = 1
    start = time.perf_counter()
    try:
        decoder.decode_and_choose(0, cache, sampling or SamplingConfig(), [0], None)
    except Exception as e:  # 编译器缺失、版本不兼容……：给一句能照着做的话，而不是几百行编译日志
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise StudyGPTError(f"编译逐词解码失败 ({type(e).__name__}: {reason})；去掉 --compile 就用普通路径。") from e
    decoder.compile_seconds = time.perf_counter() - start  # 编译花了多久（基准脚本报告它）
    model.compiled_decoder = decoder
    return model
