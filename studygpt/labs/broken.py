"""拆掉一个部件 (one part removed)：break-it 实验用的模型与损失，教科书的模型 model/transformer.py 一行不改。

每个"坏模型"都是 DialogueModel 的子类：先照常建好（同一个种子给出与对照组相同的初始权重），
再把一个部件换掉。换下的部件包住原来的模块，所以参数一个不多、一个不少（解绑输出层除外，它本来就要多一个矩阵）。
生成与考试走的也是同一串模块（generation/batch_decode.py 逐层调用 Block），所以拆掉的部件在考试时同样不在。

    NoMaskModel       没有因果掩码 (no causal mask)：每个词元也看得见它后面的词元（第 5 章）
    NoRopeModel       没有位置信息 (no RoPE)：旋转角全是 0，q·k 不知道两个词元相距多远（第 4 章）
    NoResidualModel   没有残差连接 (no residual)：x = Attn(Norm(x)) 而不是 x + Attn(Norm(x))（第 6 章）
    NoAttentionModel  没有注意力 (no attention)：每个词元只剩前馈网络，看不见任何别的词元（第 5、6 章）
    UntiedModel       输出层不与词嵌入共享矩阵 (untied embeddings)（第 4 章）
    EveryTokenLoss    损失也算用户说的话 (loss on user tokens)（第 3 章）

形状记号：B 批大小 (batch) · T 序列长度 (time) · C 通道 (d_model) · V 词表大小
"""
from __future__ import annotations

import torch
import torch.nn as nn

from studygpt.model.scoring import lm_loss
from studygpt.model.transformer import (
    Attention,
    Block,
    DialogueModel,
    ModelConfig,
)
from studygpt.training.trainer import count_labels


# ===== 1. 没有因果掩码 =====
class PeekingAttention(nn.Module):
    """包住一个 Attention，把掩码里"只许看前面"的那一半去掉；同一段对话之内前后都能看。"""

    def __init__(self, attention: Attention):
        super().__init__()
        self.inner = attention

    def forward(self, x, cos, sin, mask, cache=None, layer=0):
        T = x.shape[1]
        if mask is None and T > 1:  # 没有显式掩码时 SDPA 会自己加因果掩码 (is_causal)：给它一个全是 True 的
            mask = torch.ones(1, 1, T, T, dtype=torch.bool, device=x.device)
        elif mask is not None and mask.shape[-1] == mask.shape[-2]:
            # 训练时的掩码 = "同一段对话" 且 "在我前面"。"同一段对话"是对称的，所以与它的转置取"或"，
            # 就补上了"在我后面"的那一半，只剩下"同一段对话"：(B, 1, T, T)
            mask = mask | mask.transpose(-1, -2)
        # 逐词生成时 (T == 1) 后面还没有词元，没有什么可偷看的：掩码不变
        return self.inner(x, cos, sin, mask, cache, layer)


class NoMaskModel(DialogueModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config=config)
        for block in self.layers:
            block.attention = PeekingAttention(block.attention)


# ===== 2. 没有位置信息 =====
class NoRopeModel(DialogueModel):
    """RoPE 的 cos 表全是 1、sin 表全是 0：每个位置都"旋转 0 度"，q、k 原样进注意力。"""

    def __init__(self, config: ModelConfig):
        super().__init__(config=config)
        self.rope_cos.fill_(1.0)
        self.rope_sin.zero_()


# ===== 3. 没有残差连接 =====
class NoResidualBlock(nn.Module):
    """包住一个 Block，前向里去掉两处 `x +`：每一层的输出整个换掉输入，而不是在它上面加一点。"""

    def __init__(self, block: Block):
        super().__init__()
        self.block = block

    def forward(self, x, cos, sin, mask, cache=None, layer=0):
        b, dtype = self.block, x.dtype
        # 原来是 x + …。.to(dtype)：混合精度下支路输出是 bf16，对照组里加到 fp32 的 x 上又回到 fp32；这里照样留在 fp32
        x = b.drop(b.attention(b.attention_norm(x), cos, sin, mask, cache, layer)).to(dtype)
        return b.drop(b.feed_forward(b.ffn_norm(x))).to(dtype)


class NoResidualModel(DialogueModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config=config)
        self.layers = nn.ModuleList(NoResidualBlock(block) for block in self.layers)


# ===== 4. 没有注意力 =====
class NoAttentionBlock(nn.Module):
    """包住一个 Block，前向里跳过注意力那一支：x + MLP(Norm(x))。注意力的权重还在，只是不再被用到（也就没有梯度）。"""

    def __init__(self, block: Block):
        super().__init__()
        self.block = block

    def forward(self, x, cos, sin, mask, cache=None, layer=0):
        b = self.block
        return x + b.drop(b.feed_forward(b.ffn_norm(x)))  # 每个位置各算各的：词元之间没有任何通道


class NoAttentionModel(DialogueModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config=config)
        self.layers = nn.ModuleList(NoAttentionBlock(block) for block in self.layers)


# ===== 5. 输出层不共享词嵌入 =====
class UntiedModel(DialogueModel):
    """输出层是一个单独的 (V, C) 矩阵，与输入的词嵌入各学各的；参数多了 V·C 个。"""

    def __init__(self, config: ModelConfig):
        super().__init__(config=config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        nn.init.normal_(self.lm_head.weight, mean=0.0, std=0.02)  # 与其他矩阵同样的初始化

    def output(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)  # (..., C) → (..., V)


# ===== 6. 损失也算用户的词元 =====
def every_token_labels(batch: dict) -> dict:
    """标签换成每段对话里的全部词元（用户的话也算），只除了每段的第一个词元：它前面没有同一段的词元来预测它。
    填充（doc_ids = -1）照旧不学。"""
    labels = batch["input_ids"].masked_fill((batch["doc_ids"] < 0) | (batch["positions"] == 0), -100)
    return {**batch, "labels": labels}


class EveryTokenLoss:
    """训练目标 (objective)：与 lm_loss 相同，只是标签不再只有助手的回答。验证损失仍只算助手的回答（训练器用
    lm_loss 验证），所以两组的验证损失可以直接比。count：累加窗口里给小批次加权用的件数（见 TransformerTrainer）。"""

    def __call__(self, model, batch: dict):
        return lm_loss(model, every_token_labels(batch))

    def count(self, batch: dict) -> int:
        return count_labels(every_token_labels(batch))
