"""第 6 章：一个 Transformer 块 (block) 里发生了什么——跟着张量的形状走一遍。

    python docs/scripts/block_shapes.py

在 studygpt.model.transformer 的真实模块上挂钩子 (forward hooks)，打印一条 6 个词元的输入经过第 0 个块时
每一步的形状，以及残差流 (residual stream) 在每个块之后的大小；最后画出前置归一化块的结构图。
图：runs/course/ch06_block.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch06_block.png）
"""
import torch
from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure

from studygpt.model.transformer import DialogueModel

torch.manual_seed(0)
model = DialogueModel(vocab_size=100, d_model=64, n_head=4, n_layers=2, max_len=32).eval()
block = model.layers[0]


def show(name: str):
    def hook(module, inputs, output):
        print(f"  {str(tuple(inputs[0].shape)):<12} → {str(tuple(output.shape)):<13} {name}")
    return hook


for name, module in [("attention_norm (RMSNorm)", block.attention_norm),
                     ("attention.wqkv（q、k、v 一起算）", block.attention.wqkv),
                     ("attention.wo（各头拼回后的投影）", block.attention.wo),
                     ("ffn_norm (RMSNorm)", block.ffn_norm),
                     ("feed_forward.w13（门 gate 与 up）", block.feed_forward.w13),
                     ("feed_forward.w2（降回 d_model）", block.feed_forward.w2)]:
    module.register_forward_hook(show(name))
sizes = []  # 词嵌入之后、每个块之后，残差流的均方根大小 (RMS)
for module in [model.tok_embeddings, *model.layers]:
    module.register_forward_hook(lambda m, i, out: sizes.append(float(out.pow(2).mean().sqrt())))

ids = torch.randint(0, 100, (1, 6))  # (B=1, T=6)
with torch.no_grad():
    print(f"输入编号 (input ids) {tuple(ids.shape)}，词嵌入后 {tuple(model.tok_embeddings.weight[ids].shape)}；第 0 个块里：")
    logits = model(ids)
print("  （注意力内部：(B, T, C) → (B, nh, T, hs) = (1, 4, 6, 16)，每个头各自在 6 个词元之间做注意力）")
print(f"输出 logits {tuple(logits.shape)}：每个位置对词表里 100 个词元各打一个分")
print(f"残差流的大小 (RMS)：词嵌入后 {sizes[0]:.4f}，"
      + "，".join(f"块 {i} 后 {s:.4f}" for i, s in enumerate(sizes[1:])) + "（每个块只在上面加一点点）")

# ===== 画结构图：x → RMSNorm → 注意力 → (+) → RMSNorm → SwiGLU → (+) =====
use_cjk_font()
fig = Figure(figsize=(3.6, 6), layout="constrained")
ax = fig.subplots()
ax.axis("off")
steps = [("输入 x (B, T, C)", "white"), ("RMSNorm", "#dbe9f6"), ("注意力 Attention\n(因果 causal, RoPE)", "#9ecae1"),
         ("⊕ 残差相加 x + …", "white"), ("RMSNorm", "#dbe9f6"), ("前馈 SwiGLU MLP", "#fdd0a2"),
         ("⊕ 残差相加 x + …", "white"), ("输出 (B, T, C)", "white")]
for i, (text, color) in enumerate(steps):
    y = 1 - i / (len(steps) - 1) * 0.92 - 0.04
    ax.text(0.4, y, text, ha="center", va="center", fontsize=10,
            bbox=dict(boxstyle="round", facecolor=color, edgecolor="gray"))
    if i:
        ax.annotate("", xy=(0.4, y + 0.04), xytext=(0.4, y + 0.092), arrowprops=dict(arrowstyle="->"))
for top, bottom in [(0, 3), (3, 6)]:  # 残差捷径：绕过归一化和子层，直接加回来
    y0, y1 = (1 - k / (len(steps) - 1) * 0.92 - 0.04 for k in (top, bottom))
    ax.annotate("", xy=(0.78, y1), xytext=(0.78, y0), arrowprops=dict(arrowstyle="->", color="tab:red"))
    ax.text(0.8, (y0 + y1) / 2, "残差\nresidual", color="tab:red", fontsize=9, va="center")
ax.set_title("前置归一化块 (pre-norm block)")
save_figure(fig, "ch06_block.png")
