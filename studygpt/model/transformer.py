"""DialogueModel：一个只有解码器的因果 Transformer (decoder-only causal Transformer)，从上到下按搭建顺序写成。

    ModelConfig → RMSNorm → RoPE → Attention → MLP (SwiGLU) → Block → DialogueModel

生成时的 KV 缓存在 model/kv_cache.py，训练的损失 lm_loss 与 eval_mode 在 model/scoring.py（这里也能导入它们）。

形状记号 (shape legend)：
    B 批大小 (batch) · T 序列长度 (time) · C 通道 (d_model) · nh 头数 (heads) · hs 每头维度 (head size) · V 词表大小

参数命名沿用 Meta Llama 的习惯 (tok_embeddings, layers.i.attention.wqkv, feed_forward.w13 …)，
以后导出到 Hugging Face 时只需把融合的矩阵切开改名。

注意力在一段对话的词元之间计算 (B 维上的样本互不相干)，并且：
- 有因果掩码 (causal mask)：位置 t 只能看到 ≤ t 的词元；
- 支持右侧填充 (right padding) 与"打包" (packing)：一行里放几段对话，注意力不跨对话。
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from studygpt.errors import StudyGPTError, check_field_types
from studygpt.model.kv_cache import KVCache
from studygpt.model.scoring import eval_mode, lm_loss  # noqa: F401  旧的导入路径 (model.transformer) 照样能用

try:  # FlexAttention：PyTorch ≥ 2.5 才有；没有时文档掩码总走稠密掩码 (dense mask)
    from torch.nn.attention.flex_attention import (
        BlockMask,
        create_block_mask,
        flex_attention,
    )
except ImportError:  # pragma: no cover
    BlockMask = None


# ===== 1. 配置 (config) =====
@dataclass
class ModelConfig:
    vocab_size: int = 10000
    d_model: int = 512
    n_head: int = 8
    n_layers: int = 4
    max_len: int = 256          # 最长上下文 (context length)
    dropout: float = 0.0
    ffn_hidden: int = 0         # 0 = 自动：约 8/3·d_model，取 64 的倍数（SwiGLU 的常用取法）
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        check_field_types(self)  # 先看类型：`--d-model abc` 进来的是字符串
        checks = [
            (self.vocab_size > 0, f"vocab_size={self.vocab_size} 必须 > 0"),
            (self.d_model > 0 and self.n_head > 0, "d_model 和 n_head 必须 > 0"),
            (self.d_model % max(self.n_head, 1) == 0, f"d_model={self.d_model} 必须能被 n_head={self.n_head} 整除"),
            ((self.d_model // max(self.n_head, 1)) % 2 == 0, "每头维度 d_model/n_head 必须是偶数（RoPE 成对旋转）"),
            (self.n_layers > 0 and self.max_len > 0, "n_layers 和 max_len 必须 > 0"),
            (0.0 <= self.dropout < 1.0, f"dropout={self.dropout} 必须在 [0, 1) 之间"),
            (self.rope_base > 1 and self.norm_eps > 0, f"rope_base={self.rope_base} 必须 > 1，norm_eps={self.norm_eps} 必须 > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise StudyGPTError(f"模型配置无效 (invalid ModelConfig): {message}。")
        if self.ffn_hidden <= 0:
            self.ffn_hidden = 64 * math.ceil(8 * self.d_model / 3 / 64)

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_head

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise StudyGPTError(f"模型配置里有未知字段 {sorted(unknown)}；这个检查点可能来自更新版本的 StudyGPT。")
        for key, value in d.items():  # 类型先对上，__post_init__ 的比较才不会 TypeError
            want = (int,) if cls.__dataclass_fields__[key].type == "int" else (int, float)
            if isinstance(value, bool) or not isinstance(value, want):
                raise StudyGPTError(f"模型配置的 {key}={value!r} 不是{'整数' if want == (int,) else '数字'}；"
                                    "config.json 被改坏了。")
        return cls(**d)


# ===== 2. RMSNorm =====
class RMSNorm(nn.Module):
    """按均方根归一化 (root-mean-square norm)：比 LayerNorm 少减一次均值，效果相当，现代 LLM 常用。"""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


# ===== 3. 旋转位置编码 RoPE (rotary position embedding) =====
def rope_tables(head_size: int, max_len: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """预先算好每个位置、每对维度的旋转角的 cos/sin，形状 (max_len, hs/2)。"""
    inv_freq = 1.0 / base ** (torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """把 x 的每对维度 (x1, x2) 旋转一个与位置成正比的角度。x: (..., hs)，如 (B, nh, T, hs)；
    cos/sin: 能广播到 x 前一半的形状，如 (B, 1, T, hs/2)。

    旋转后 q·k 只取决于两个位置之差，模型因此知道"相距多远"，而不是死记绝对位置。
    """
    x1, x2 = x.float().chunk(2, dim=-1)  # 前一半与后一半配对 (Llama/NeoX 的写法)
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.type_as(x)


# ===== 4. 注意力 (attention) =====
def manual_attention(q, k, v, mask):
    """手写的注意力，和 F.scaled_dot_product_attention 算的是同一个东西，用来读懂它、检查它。

    q: (B, nh, Tq, hs)；k, v: (B, nh, Tk, hs)；mask: (B, 1, Tq, Tk) 布尔值，True 表示"可以看"。
    返回 (输出 (B, nh, Tq, hs), 注意力权重 (B, nh, Tq, Tk))。
    """
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, nh, Tq, Tk)：每个查询对每个键的相似度
    scores = scores.masked_fill(~mask, float("-inf"))            # 不许看的位置（未来、别的对话）权重为 0
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_head, self.head_size = config.n_head, config.head_size
        # q、k、v 三个投影融合成一个矩阵乘法：一次大乘法比三次小乘法快
        self.wqkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.wo = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dropout = config.dropout

    def qkv(self, x, cos, sin):
        """x (B, T, C) → 旋转过位置的 q、k 和 v，各 (B, nh, T, hs)。"""
        B, T, C = x.shape
        # (B, T, 3C) → (B, T, 3, nh, hs) → 三个 (B, T, nh, hs) 的视图（不复制）
        q, k, v = self.wqkv(x).view(B, T, 3, self.n_head, self.head_size).unbind(2)
        # 在转置之前的 (B, T, nh, hs) 排列上做 RoPE：q、k 的梯度于是按 wqkv 输出的顺序连续存放，
        # 反向传播拼回 wqkv 的梯度时不必再做一次转置复制
        cos, sin = cos.transpose(1, 2), sin.transpose(1, 2)  # (B, 1, T, hs/2) → (B, T, 1, hs/2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # (B, T, nh, hs) → (B, nh, T, hs)：每个头独立地在 T 个词元之间做注意力
        return tuple(t.transpose(1, 2) for t in (q, k, v))

    def merge_heads(self, y):
        """各头的输出 (B, nh, T, hs) → 拼回 (B, T, C) → 输出投影 wo。"""
        B, nh, T, hs = y.shape
        return self.wo(y.transpose(1, 2).reshape(B, T, nh * hs))

    def forward(self, x, cos, sin, mask, cache: KVCache | None = None, layer: int = 0):
        q, k, v = self.qkv(x, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, nh, T_cached + T, hs)
        if BlockMask is not None and isinstance(mask, BlockMask):  # GPU 上的打包训练：见 document_block_mask
            return self.merge_heads(compiled_flex_attention()(q, k, v, block_mask=mask))
        # mask 为 None 时：T > 1 用内置因果掩码（最快）；T == 1 是逐词生成，新词元可以看全部缓存。
        # 与 manual_attention 算的是同一个东西（test_manual_attention_equals_sdpa）
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and q.shape[2] > 1,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.merge_heads(y)


def causal_mask(T: int, device) -> torch.Tensor:
    """下三角布尔矩阵 (1, 1, T, T)：位置 t 只能看到 0..t。"""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril().view(1, 1, T, T)


# ===== 5. 前馈网络 MLP (SwiGLU) =====
class MLP(nn.Module):
    """SwiGLU：silu(x·W1) ⊙ (x·W3) 再乘 W2。门控 (gate) 让网络自己决定放行哪些特征。"""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.hidden = config.ffn_hidden
        self.w13 = nn.Linear(config.d_model, 2 * config.ffn_hidden, bias=False)  # W1 与 W3 融合
        self.w2 = nn.Linear(config.ffn_hidden, config.d_model, bias=False)

    def forward(self, x):
        gate, up = self.w13(x).split(self.hidden, dim=-1)
        return self.w2(F.silu(gate) * up)


# ===== 6. Transformer 块 (block) =====
class Block(nn.Module):
    """前置归一化 (pre-norm)：x + Attn(Norm(x))，再 x + MLP(Norm(x))。残差通路保持干净，深了也好训练。"""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.feed_forward = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, cos, sin, mask, cache=None, layer=0):
        x = x + self.drop(self.attention(self.attention_norm(x), cos, sin, mask, cache, layer))
        return x + self.drop(self.feed_forward(self.ffn_norm(x)))


# ===== 7. 整个模型 =====
class DialogueModel(nn.Module):
    """DialogueModel(vocab_size, d_model=512, n_head=8, n_layers=4, max_len=256, ...) 或 DialogueModel(config=cfg)。

    forward(input_ids (B, T)) → logits (B, T, V)。可选参数：
      attention_mask (B, T)：1 是真实词元，0 是填充（右侧填充）；
      doc_ids (B, T)：打包时每个词元属于第几段对话，注意力只在同一段内；
      positions (B, T)：每个词元的位置，打包时每段对话从 0 重新数；
      cache：KVCache，生成时用；return_hidden=True：返回最后的隐藏状态 (B, T, C)，
      让训练只在有标签的位置算输出层（输出层是最大的一个矩阵乘法）。
    """

    def __init__(self, vocab_size: int | None = None, d_model: int = 512, n_head: int = 8, n_layers: int = 4,
                 max_len: int = 256, dropout: float = 0.0, config: ModelConfig | None = None, **kwargs):
        super().__init__()
        if config is None:
            if vocab_size is None:
                raise StudyGPTError("DialogueModel 需要 vocab_size（通常是 tokenizer.vocab_size）或 config=ModelConfig(...)。")
            config = ModelConfig(vocab_size=vocab_size, d_model=d_model, n_head=n_head, n_layers=n_layers,
                                 max_len=max_len, dropout=dropout, **kwargs)
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        cos, sin = rope_tables(config.head_size, config.max_len, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)  # 由配置算出，不存进检查点
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """小的正态初始化；残差支路的输出矩阵再按层数缩小，使初始时每层只轻轻改动残差流。"""
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * self.config.n_layers) if name.endswith(("wo.weight", "w2.weight")) else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def output(self, hidden: torch.Tensor) -> torch.Tensor:
        """输出层：与输入嵌入共享同一个矩阵 (tied embeddings)，隐藏状态 (..., C) → logits (..., V)。"""
        return F.linear(hidden, self.tok_embeddings.weight)

    def forward(self, input_ids, attention_mask=None, doc_ids=None, positions=None,
                cache: KVCache | None = None, return_hidden: bool = False):
        B, T = input_ids.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.max_len:
            raise StudyGPTError(f"输入长度 {start + T} 超过模型的 max_len={self.config.max_len}；请截短输入。")
        if positions is None:
            positions = torch.arange(start, start + T, device=input_ids.device).expand(B, T)
        cos = self.rope_cos[positions].unsqueeze(1)  # (B, 1, T, hs/2)
        sin = self.rope_sin[positions].unsqueeze(1)
        if uses_block_mask(input_ids.device, self.config.dropout) and cache is None and (
                doc_ids is not None or attention_mask is not None):
            mask = document_block_mask(doc_ids, attention_mask)
        else:
            mask = build_mask(T, start, attention_mask, doc_ids, input_ids.device)

        x = self.tok_embeddings(input_ids)  # (B, T, C)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, cache, i)
        if cache is not None:
            cache.length += T
        x = self.norm(x)
        return x if return_hidden else self.output(x)

    @torch.no_grad()
    def resize_vocab(self, vocab_size: int) -> None:
        """词表变大之后（tokenizer.add_tokens）把嵌入矩阵加几行，已有的行原样保留。

        新行取已有嵌入的平均值：输出层与嵌入共享这个矩阵，平均向量给出的 logit 接近已有词元的平均，
        新词元一开始既不会被抢着生成，也不是永远选不到；随机初始化的行则可能一开始就占掉很大的概率。
        """
        old = self.tok_embeddings.weight
        if vocab_size < old.shape[0]:
            raise StudyGPTError(f"resize_vocab 只能变大：现在 {old.shape[0]}，要求 {vocab_size}。")
        if vocab_size == old.shape[0]:
            return
        new = nn.Embedding(vocab_size, self.config.d_model, device=old.device, dtype=old.dtype)
        new.weight[: old.shape[0]] = old
        new.weight[old.shape[0]:] = old.mean(0)
        self.tok_embeddings = new
        self.config.vocab_size = vocab_size

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def param_breakdown(self) -> list[tuple[str, int]]:
        """按组件统计参数 (parameters per component)，给 `studygpt info` 与学习者看。"""
        c = self.config
        attn = sum(p.numel() for p in self.layers[0].attention.parameters())
        mlp = sum(p.numel() for p in self.layers[0].feed_forward.parameters())
        norms = sum(p.numel() for n, p in self.named_parameters() if "norm" in n)
        return [
            ("词嵌入 = 输出层 (tok_embeddings, tied)", self.tok_embeddings.weight.numel()),
            (f"注意力 (attention) ×{c.n_layers}", attn * c.n_layers),
            (f"前馈 SwiGLU (feed_forward) ×{c.n_layers}", mlp * c.n_layers),
            ("归一化 (RMSNorm)", norms),
            ("合计 (total)", self.num_params()),
        ]


def build_mask(T: int, start: int, attention_mask, doc_ids, device):
    """组合出注意力掩码 (B, 1, T, start+T)，True 表示可以看；不需要显式掩码时返回 None（最快）。

    - 因果：查询 i（绝对位置 start+i）只看键 j ≤ start+i；
    - 右侧填充：把填充词元当作一段单独的"对话"（编号 -1），真实词元看不到它们；
      填充词元自己仍能看到自己，避免整行都被遮住而 softmax 出 NaN；
    - 打包：只有 doc_ids 相同的词元之间才能互相看。
    """
    if doc_ids is None and attention_mask is None:
        if start == 0 or T == 1:
            return None  # 交给 SDPA：T > 1 用 is_causal，T == 1 不需要掩码
        q_pos = torch.arange(start, start + T, device=device)[:, None]
        return (torch.arange(start + T, device=device)[None, :] <= q_pos).view(1, 1, T, start + T)
    if start != 0:
        raise StudyGPTError("带 KV 缓存的增量生成不支持 attention_mask/doc_ids；请一次只生成一段对话。")
    if doc_ids is None:
        doc_ids = torch.zeros_like(attention_mask, dtype=torch.long)
    if attention_mask is not None:
        doc_ids = doc_ids.masked_fill(attention_mask == 0, -1)
    same_doc = doc_ids[:, :, None] == doc_ids[:, None, :]  # (B, T, T)
    return (same_doc & causal_mask(T, device)[0]).unsqueeze(1)  # (B, 1, T, T)


def uses_block_mask(device: torch.device, dropout: float) -> bool:
    """文档掩码用不用 FlexAttention：只在 CUDA 上、且没有注意力 dropout 时（FlexAttention 不做 dropout）。

    为什么只在 GPU：稠密的布尔掩码 (B, 1, T, T) 让 GPU 上的 SDPA 用不上最快的 flash 内核；FlexAttention 按
    128×128 的块 (block) 记下哪些块全看不到、哪些全看得到，整块跳过，仍是一个融合内核。CPU 上 SDPA 带布尔掩码
    本来就走融合的 flash 实现，FlexAttention 在 CPU 上不编译时反而要造出整个分数矩阵，所以 CPU 照旧。
    """
    return BlockMask is not None and device.type == "cuda" and dropout == 0.0


def document_block_mask(doc_ids, attention_mask=None):
    """打包的文档掩码写成 FlexAttention 的 BlockMask：查询 q 能看键 kv ⇔ 同一段对话且 kv ≤ q。

    和 build_mask 是同一条规则（填充词元记为 -1，自成一段），只是交给 FlexAttention 按块处理，
    不造出 (B, 1, T, T) 的稠密矩阵。doc_ids / attention_mask: (B, T)，至少给一个。
    """
    if doc_ids is None:
        doc_ids = torch.zeros_like(attention_mask, dtype=torch.long)
    if attention_mask is not None:
        doc_ids = doc_ids.masked_fill(attention_mask == 0, -1)
    B, T = doc_ids.shape

    def same_doc_causal(b, h, q, kv):  # FlexAttention 的 mask_mod：对每个 (批, 头, 查询, 键) 说能不能看
        return (doc_ids[b, q] == doc_ids[b, kv]) & (kv <= q)

    return create_block_mask(same_doc_causal, B, None, T, T, device=doc_ids.device)


@functools.cache
def compiled_flex_attention():
    """编译过的 flex_attention（第一次调用时编译，之后重用）：不编译时它会造出整个分数矩阵，又慢又占内存。"""
    return torch.compile(flex_attention, dynamic=False)
