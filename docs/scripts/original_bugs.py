"""第 5 章：原项目注意力的两个 bug，用数字看清楚；再对 StudyGPT 的 DialogueModel 做同样的检查。

    python docs/scripts/original_bugs.py

bug 1 注意力在"一个批次的样本之间"计算，而不是在"一段对话的词元之间"：
    PyTorch 的 nn.MultiheadAttention 默认 batch_first=False，期待的输入形状是 (T, B, C)。
    把 (B, T, C) 直接喂进去，它就把 B 当成了序列：样本 0 的第 t 个词元去"看"其他样本的第 t 个词元，
    而同一段对话里的词元之间反倒一点信息都不交换。
bug 2 没有因果掩码 (causal mask)：位置 t 能看到它之后的词元。训练时"预测下一个字"变成了"抄下一个字"，
    loss 很低却什么也没学会；生成时未来还不存在，模型就答不上来。
检查方法（tests/test_model.py 的 test_batch_independence 与
test_causality_future_token_does_not_change_past_logits 做的就是这个）：
    改动样本 1 → 样本 0 的输出变了多少？改动位置 5 的词元 → 位置 0..4 的输出变了多少？正确的模型两者都是 0。
"""
import torch
import torch.nn as nn

from studygpt.inspection.attention import manual_attention_path
from studygpt.model.transformer import DialogueModel

torch.manual_seed(0)
B, T, C = 2, 8, 16  # 批大小 (batch) · 序列长度 (time) · 通道 (d_model)


def differences(f, x: torch.Tensor, other_sample: torch.Tensor, future: torch.Tensor) -> tuple[float, float]:
    """(改样本 1 后样本 0 的最大变化, 改位置 5 后位置 0..4 的最大变化)。f: (B, T, …) → (B, T, …)。"""
    with torch.no_grad():
        y, y_other, y_future = f(x), f(other_sample), f(future)
    return float((y_other[0] - y[0]).abs().max()), float((y_future[:, :5] - y[:, :5]).abs().max())


def report(name: str, diffs: tuple[float, float]) -> None:
    print(f"{diffs[0]:>12.6f}  {diffs[1]:>14.6f}   {name}")


# ===== 1. 原项目式的注意力层 =====
x = torch.randn(B, T, C)                                   # (B, T, C)
x_other = x.clone()
x_other[1] = torch.randn(T, C)                             # 只改样本 1
x_future = x.clone()
x_future[:, 5] = torch.randn(B, C)                         # 只改位置 5

seq_first = nn.MultiheadAttention(C, num_heads=4)          # 默认 batch_first=False：要 (T, B, C)
batch_first = nn.MultiheadAttention(C, num_heads=4, batch_first=True)
causal = torch.ones(T, T, dtype=torch.bool).triu(1)        # True = 不许看（未来的位置）


def bug1(x):  # (B, T, C) 被当成 (T, B, C)：注意力在 B 个样本之间做
    return seq_first(x, x, x, need_weights=False)[0]


def bug2(x):  # 在词元之间做了，但没有掩码：每个位置都能看见未来
    return batch_first(x, x, x, need_weights=False)[0]


def fixed(x):  # 同一层，加上因果掩码
    return batch_first(x, x, x, attn_mask=causal, need_weights=False)[0]


print("改样本1→样本0   改位置5→位置0..4   哪种注意力 (which attention)")
report("bug 1：(B,T,C) 喂给 batch_first=False 的层", differences(bug1, x, x_other, x_future))
report("bug 2：在词元之间算，但没有因果掩码", differences(bug2, x, x_other, x_future))
report("修好：batch_first=True + 因果掩码", differences(fixed, x, x_other, x_future))

# ===== 2. StudyGPT 的 DialogueModel：同样的两个检查，看整个模型输出的 logits =====
model = DialogueModel(vocab_size=50, d_model=32, n_head=4, n_layers=2, max_len=16).eval()
ids = torch.randint(0, 50, (B, T))
ids_other = ids.clone()
ids_other[1] = torch.randint(0, 50, (T,))
ids_future = ids.clone()
ids_future[:, 5] = (ids[:, 5] + 1) % 50
report("StudyGPT DialogueModel（快速路径 SDPA）", differences(model, ids, ids_other, ids_future))
with manual_attention_path(model):                        # 手写的注意力路径：同样的检查
    report("StudyGPT DialogueModel（手写注意力 manual）", differences(model, ids, ids_other, ids_future))
print("bug 1 里词元之间不交换信息，所以\"改位置 5\"那一列是 0——它不是没有 bug，而是根本没在看上下文。")
