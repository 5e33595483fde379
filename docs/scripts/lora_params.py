"""第 13 章：LoRA 只训练多少参数？秩 r 越大，适配器越大；但比起整个模型总是很小。

    python docs/scripts/lora_params.py

对 tiny（快速上手）和 study 两个预设的模型装上不同秩的 LoRA（studygpt.model.lora.add_lora），数可训练参数的占比。
图：左边把 tiny 模型一层的 wqkv（384 × 128）与 r = 8 的 B（384 × 8）、A（8 × 128）按比例画出来；右边是占比随 r 的变化。
图：runs/course/ch13_lora.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch13_lora.png）
"""
from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from studygpt.model.lora import LoRAConfig, add_lora, trainable_share
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.recipes.presets import get_preset

RANKS = (1, 2, 4, 8, 16, 32, 64)
shares = {}
for preset, vocab in (("tiny", 1462), ("study", 10000)):
    shares[preset] = []
    for r in RANKS:
        model = DialogueModel(config=ModelConfig(vocab_size=vocab, **get_preset(preset)["model"]))
        trainable, total = trainable_share(add_lora(model, LoRAConfig(rank=r, alpha=2 * r)))
        shares[preset].append(trainable / total)
    print(f"{preset:<5}（{total - trainable:,} 个底座参数）: "
          + " · ".join(f"r={r} {s:.2%}" for r, s in zip(RANKS, shares[preset])))

use_cjk_font()
fig = Figure(figsize=(8, 3.4), layout="constrained")
left, right = fig.subplots(1, 2, width_ratios=[1.1, 1])
boxes = [(0, 0, 128, 384, "W (384×128)\n冻结 frozen", "0.8"), (160, 0, 8, 384, "B\n384×8", "C1"),
         (190, 376, 128, 8, "A  8×128", "C0")]
for x, y, w, h, label, color in boxes:
    left.add_patch(Rectangle((x, y), w, h, color=color, alpha=0.8))
    left.text(x + w / 2 if w > 20 else x + w + 4, y + h / 2 if h > 20 else y - 30, label,
              ha="center" if w > 20 else "left", va="center", fontsize=9)
left.set_xlim(-10, 330)
left.set_ylim(-60, 400)
left.set_aspect("equal")
left.set_axis_off()
left.set_title("W + (α/r)·B A：只训练 B 和 A（r = 8）", fontsize=10)
for preset, values in shares.items():
    right.plot(RANKS, [100 * s for s in values], marker="o", label=f"{preset} 预设")
right.set_xscale("log", base=2)
right.set_xticks(RANKS, labels=[str(r) for r in RANKS])
right.set_xlabel("秩 rank r")
right.set_ylabel("可训练参数占比 %")
right.set_title("适配器只占模型的一小部分")
right.grid(alpha=0.3)
right.legend()
save_figure(fig, "ch13_lora.png")
