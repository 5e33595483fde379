"""第 11 章：把模型带出去 (take the model out)——同一个模型，三套名字，两种 RoPE 配对。

    python docs/scripts/export_layout.py

1. 第 0 层的每个权重：我们的名字 → Hugging Face 的名字 → GGUF 的名字（融合的 wqkv、w13 切开）；
2. q、k 的行怎样重排：rotate-half（第 i 维与第 i + hs/2 维一对）→ llama.cpp 的相邻配对（2i 与 2i+1）；
3. 验证：重排前做 rotate-half 的 RoPE，与重排后做相邻配对的 RoPE，结果只差一个同样的重排。
用的是 studygpt/export/ 里真正的 hf_state_dict、HF_TO_GGUF 与 permute_for_llama_cpp（不需要装 export 依赖）。
图：runs/course/ch11_export.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch11_export.png）
"""
import numpy as np
import torch
from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from studygpt.export.gguf import HF_TO_GGUF, permute_for_llama_cpp
from studygpt.export.hf import hf_state_dict
from studygpt.model.transformer import DialogueModel, apply_rope, rope_tables

torch.manual_seed(0)
model = DialogueModel(vocab_size=50, d_model=16, n_head=2, n_layers=1, max_len=32)  # hs = 8

# ===== 1. 三套名字 (three naming schemes) =====
print("第 0 层 (layer 0)：我们的权重 → Hugging Face → GGUF")
ours = {n: tuple(p.shape) for n, p in model.state_dict().items() if n.startswith("layers.0.")}
for name, shape in ours.items():
    print(f"  {name:<36} {str(shape):<10}")
for hf_name, tensor in hf_state_dict(model).items():
    if ".layers.0." in hf_name:
        gguf_name = HF_TO_GGUF[hf_name.replace(".0.", ".{i}.", 1)].format(i=0)
        print(f"  → {hf_name:<44} {str(tuple(tensor.shape)):<10} → {gguf_name}")

# ===== 2. q、k 的行怎样重排 (how the q/k rows move) =====
hs = model.config.head_size
order = permute_for_llama_cpp(np.arange(hs)[:, None], n_head=1)[:, 0]  # 一个头：新的第 j 行是旧的第 order[j] 行
print(f"一个头 (hs={hs}) 的 q/k 行，重排后的顺序：{order.tolist()}（旧的第 i 行与第 i+{hs // 2} 行挨在一起）")

# ===== 3. 两种 RoPE 算的是同一件事 (same rotation, different layout) =====
T = 6
cos, sin = rope_tables(hs, T, 10000.0)  # (T, hs/2)
q = torch.randn(T, hs)
rotate_half = apply_rope(q, cos, sin)   # 我们（和 HF）的写法
a, b = q[:, order].view(T, hs // 2, 2).unbind(-1)  # 重排后，相邻两维一对
adjacent = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).view(T, hs)  # llama.cpp 的写法
print(f"rotate-half 的结果重排之后 vs 相邻配对的结果：最大差 {(rotate_half[:, order] - adjacent).abs().max():.1e}")

use_cjk_font()
fig = Figure(figsize=(7.5, 2.6), layout="constrained")
ax = fig.subplots()
colors = [f"C{i % (hs // 2)}" for i in range(hs)]  # 同一对维度同一种颜色
for row, (y, layout) in enumerate([(1.0, list(range(hs))), (0.0, order.tolist())]):
    for x, dim in enumerate(layout):
        ax.add_patch(Rectangle((x, y), 0.9, 0.5, color=colors[dim], alpha=0.8))
        ax.text(x + 0.45, y + 0.25, str(dim), ha="center", va="center", color="white", fontsize=11)
for new, old in enumerate(order.tolist()):
    ax.annotate("", xy=(new + 0.45, 0.52), xytext=(old + 0.45, 0.98), arrowprops={"arrowstyle": "->", "color": "gray"})
ax.text(-0.2, 1.25, "我们 / HF：rotate-half，第 i 与 i+hs/2 维一对", ha="right", va="center", fontsize=9)
ax.text(-0.2, 0.25, "GGUF / llama.cpp：相邻两维一对", ha="right", va="center", fontsize=9)
ax.set_xlim(-5.5, hs + 0.2)
ax.set_ylim(-0.1, 1.6)
ax.axis("off")
ax.set_title(f"q、k 每个头的 {hs} 行怎样重排（同色 = 一起旋转的一对）")
save_figure(fig, "ch11_export.png")
