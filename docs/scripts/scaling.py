"""第 10 章：变大 (scaling up)——计算花在哪里，以及数据并行 (DDP) 为什么算得对。

    python docs/scripts/scaling.py

1. 用 studygpt.inspection.params.cost_breakdown 算几种大小的模型：参数、每词元 FLOPs、各组件的占比；
   模型越大，输出层的占比越小；上下文越长，注意力分数 (12·L·T·C) 的占比越大；
2. 在一个进程里模拟 2 个 DDP 进程：各算一半批次的梯度再平均 = 整个批次的梯度。
   各进程的被学习词元数不同时，要按词元数加权（train_step 的做法），简单平均会有偏差。
图：runs/course/ch10_scaling.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch10_scaling.png）
"""
import torch
from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure

from studygpt.inspection.params import cost_breakdown
from studygpt.model.transformer import DialogueModel, ModelConfig, lm_loss

# ===== 1. 不同大小的模型：计算花在哪里 =====
sizes = {  # 名字: (d_model, n_head, n_layers, 序列长度 T)；词表都是 10000
    "tiny": (128, 4, 2, 192), "small": (256, 4, 4, 256), "study": (512, 8, 4, 256),
    "study 16 层": (512, 8, 16, 256), "GPT-2 small 大小": (768, 12, 12, 1024)}
shares = {}
print(f"{'参数 params':>14} {'FLOPs/词元':>12}  输出层  注意力投影  注意力分数  前馈MLP   模型")
for name, (d, nh, L, T) in sizes.items():
    costs = cost_breakdown(ModelConfig(vocab_size=10000, d_model=d, n_head=nh, n_layers=L, max_len=T), T)
    per_token = sum(c.flops_per_token for c in costs)
    shares[name] = [c.flops_per_token / per_token for c in costs if c.flops_per_token]
    print(f"{sum(c.params for c in costs):>14,} {per_token / 1e6:>10.1f} M  "
          + "  ".join(f"{s:>8.1%}" for s in shares[name]) + f"   {name}")

# ===== 2. 数据并行：两个"进程"各算一半，梯度取平均 =====
torch.manual_seed(0)
model = DialogueModel(vocab_size=50, d_model=32, n_head=4, n_layers=1, max_len=16)
ids = torch.randint(0, 50, (4, 16))
labels = ids.clone()
labels[:2, :12] = -100  # 进程 0 的两行只有少量被学习的词元，进程 1 的多
batch = {"input_ids": ids, "labels": labels}


def grad(b: dict, weight: float = 1.0) -> torch.Tensor:
    model.zero_grad()
    loss, _ = lm_loss(model, b)
    (loss * weight).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


shards = [{k: v[r * 2:(r + 1) * 2] for k, v in batch.items()} for r in range(2)]  # rank r 拿第 2r、2r+1 行
counts = [int((s["labels"][:, 1:] != -100).sum()) for s in shards]
full = grad(batch)
naive = sum(grad(s) for s in shards) / 2                                        # 每个进程的平均损失再平均
weighted = sum(grad(s, n * 2 / sum(counts)) for s, n in zip(shards, counts)) / 2  # train_step 的加权（DDP 再 ÷2）
print(f"两个进程的被学习词元数 {counts}；和整批梯度的最大差：简单平均 {float((naive - full).abs().max()):.2e}，"
      f"按词元数加权 {float((weighted - full).abs().max()):.2e}")

use_cjk_font()
fig = Figure(figsize=(7.5, 3.4), layout="constrained")
ax = fig.subplots()
bottom = [0.0] * len(shares)
for i, part in enumerate(["输出层 output head", "注意力投影 wqkv·wo", "注意力分数 QK^T·AV", "前馈 MLP"]):
    values = [s[i] for s in shares.values()]
    ax.bar(list(shares), values, bottom=bottom, label=part)
    bottom = [b + v for b, v in zip(bottom, values)]
ax.set_ylabel("训练 FLOPs 占比")
ax.set_title("模型变大后，计算花在哪里（词表 10000）")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
save_figure(fig, "ch10_scaling.png")
