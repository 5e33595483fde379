"""第 7 章：训练的几个基本零件，每个都用项目里真正的代码量一量。

    python docs/scripts/training_basics.py

1. 刚初始化的模型什么都不懂：损失 (loss) ≈ ln(词表大小)；
2. AdamW 的两组参数：矩阵做权重衰减 (weight decay)，RMSNorm 的缩放向量不做；
3. 学习率：线性预热 (warm-up) + 余弦衰减 (cosine decay)，按训练进度走，一定会走完；
4. 梯度累加 (gradient accumulation)：4 个小批次按标签数加权累加 = 1 个大批次，梯度相同；
5. 混合精度 (mixed precision)：这台机器上用什么精度、为什么。
图：runs/course/ch07_lr_schedule.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch07_lr_schedule.png）
"""
import math

import torch
from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure

from studygpt.hardware import choose_precision
from studygpt.model.transformer import DialogueModel, lm_loss
from studygpt.training.optim import TrainConfig, WarmupCosine, build_optimizer

torch.manual_seed(0)
V = 500
model = DialogueModel(vocab_size=V, d_model=64, n_head=4, n_layers=2, max_len=32)

# ===== 1. 初始损失 ≈ ln V =====
ids = torch.randint(0, V, (8, 32))
labels = ids.clone()
labels[:, :10] = -100  # 前 10 个位置当作"用户的话"，不计损失
batch = {"input_ids": ids, "labels": labels}
loss, n = lm_loss(model, batch)
print(f"1. 初始损失 (loss at init) = {loss.item():.3f}，ln({V}) = {math.log(V):.3f}（{n} 个标签）")

# ===== 2. AdamW 参数分组 =====
config = TrainConfig(lr=1e-3, max_steps=1000, warmup_ratio=0.05)
optimizer = build_optimizer(model, config)
for group in optimizer.param_groups:
    print(f"2. 权重衰减 {group['weight_decay']:<4}：{len(group['params'])} 个张量，"
          f"{sum(p.numel() for p in group['params']):,} 个参数")

# ===== 3. 预热 + 余弦 =====
schedule = WarmupCosine(optimizer, config, total_steps=1000)
progress = [i / 1000 for i in range(1001)]
lrs = [schedule.lr_at(p) for p in progress]
print("3. 学习率 (lr)：" + "  ".join(f"进度 {p:.0%} → {schedule.lr_at(p):.2e}" for p in (0.01, 0.05, 0.5, 1.0)))

# ===== 4. 梯度累加 = 大批次 =====


def grads_of(micro_batches: list[dict]) -> torch.Tensor:
    """像 TransformerTrainer.train_step 一样：每个小批次的损失乘以 (它的标签数 / 总标签数) 再反向。"""
    model.zero_grad()
    n_total = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro_batches)
    for b in micro_batches:
        loss, n = lm_loss(model, b)
        (loss * n / n_total).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


whole = grads_of([batch])
pieces = grads_of([{k: v[i:i + 2] for k, v in batch.items()} for i in range(0, 8, 2)])
print(f"4. 1 个 8 行的批次 vs 4 个 2 行的小批次累加：梯度最大差 {float((whole - pieces).abs().max()):.2e}"
      f"（梯度本身最大 {float(whole.abs().max()):.2e}）")

# ===== 5. 混合精度 =====
print("5. 精度 (precision):", choose_precision(torch.device("cpu")).reason)

use_cjk_font()
fig = Figure(figsize=(6, 3), layout="constrained")
ax = fig.subplots()
ax.plot([p * 1000 for p in progress], lrs)
ax.axvline(50, color="gray", linestyle=":", label="预热结束 (end of warm-up)")
ax.set_title("学习率：线性预热 + 余弦衰减到 0.1·lr (WarmupCosine)")
ax.set_xlabel("优化步 (optimizer step)")
ax.set_ylabel("学习率 lr")
ax.legend()
ax.grid(alpha=0.3)
save_figure(fig, "ch07_lr_schedule.png")
