"""第 4 章：词嵌入与旋转位置编码 (embeddings and RoPE)。

    python docs/scripts/rope.py

1. 词嵌入 (embedding) 就是查表：编号 i → 矩阵的第 i 行；
2. RoPE 把向量的每一对维度旋转一个与位置成正比的角度：长度 (norm) 不变；
3. 旋转之后 q·k 只取决于两个位置之差 m − n，和它们的绝对位置无关。
用的是 studygpt.model.transformer 里真正的 rope_tables / apply_rope。
图：runs/course/ch04_rope.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch04_rope.png）
"""
import torch
from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure

from studygpt.model.transformer import DialogueModel, apply_rope, rope_tables

torch.manual_seed(0)

# ===== 1. 词嵌入是查表 (embedding = table lookup) =====
model = DialogueModel(vocab_size=20, d_model=8, n_head=2, n_layers=1, max_len=64)
table = model.tok_embeddings.weight                    # (V, C) = (20, 8)
looked_up = model.tok_embeddings(torch.tensor([3, 7]))  # (2, C)
print(f"词嵌入表 (embedding table) 形状 {tuple(table.shape)}；编号 3、7 的向量就是第 3、7 行：",
      torch.equal(looked_up, table[[3, 7]]))

# ===== 2. 旋转不改变长度 (rotation keeps the norm) =====
hs, T = 16, 64                     # 每头维度 hs、位置数
cos, sin = rope_tables(hs, T, base=10000.0)  # (T, hs/2)


def rope_at(x: torch.Tensor, pos: int) -> torch.Tensor:
    """把一个向量 x (hs,) 放到位置 pos 上旋转。apply_rope 要的形状是 (B, nh, T, hs)。"""
    return apply_rope(x.view(1, 1, 1, hs), cos[pos].view(1, 1, 1, -1), sin[pos].view(1, 1, 1, -1)).view(hs)


q, k = torch.randn(hs), torch.randn(hs)
print("q 的长度 |q|:", f"{q.norm():.4f}；放到位置 0 / 5 / 60 旋转后:",
      " / ".join(f"{rope_at(q, p).norm():.4f}" for p in (0, 5, 60)))

# ===== 3. q·k 只看相对距离 (the score depends only on m − n) =====
for m, n in [(3, 1), (10, 8), (60, 58), (10, 1)]:
    print(f"q 在位置 {m:>2}、k 在位置 {n:>2}（相距 {m - n}）: q·k = {rope_at(q, m) @ rope_at(k, n):+.4f}")
scores = torch.stack([torch.stack([rope_at(q, m) @ rope_at(k, n) for n in range(32)]) for m in range(32)])

use_cjk_font()
fig = Figure(figsize=(7.5, 3.2), layout="constrained")
left, right = fig.subplots(1, 2)
image = left.imshow(scores.numpy(), cmap="coolwarm")
left.set_title("q·k：q 在位置 m、k 在位置 n")
left.set_xlabel("k 的位置 n")
left.set_ylabel("q 的位置 m")
fig.colorbar(image, ax=left, shrink=0.8)
for pair in (0, 2, 7):  # cos(位置 × 这对维度的频率)：前面的维度转得快，后面的转得慢
    right.plot(cos[:32, pair].numpy(), label=f"第 {pair} 对维度")
right.set_title("每对维度的旋转：cos(角度)")
right.set_xlabel("位置 position")
right.legend(fontsize=8)
save_figure(fig, "ch04_rope.png", note="（左图每条斜线上颜色相同：只取决于 m − n）")
