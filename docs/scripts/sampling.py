"""第 8 章：采样 (sampling)——同一组 logits，不同的采样设置抽出不同的字。

    python docs/scripts/sampling.py

手写一组 8 个字的 logits，用生成时真正的 studygpt.generation.generate.process_logits 在每种设置下变成概率：
温度 (temperature) 0.5 / 1 / 1.5，top-k = 5，top-p = 0.9，重复惩罚 (repetition penalty) 1.3（假设"好"已经写过）。
表格用 `studygpt inspect next` 的同一个函数（inspect_tools.settings_table）打印。
图：runs/course/ch08_sampling.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch08_sampling.png）
"""
import torch
from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure

from studygpt.generation.generate import process_logits
from studygpt.inspection.next_token import SETTINGS, settings_table
from studygpt.tokenizer.char import Tokenizer

chars = "好的呀了吗呢啊哈"
tok = Tokenizer().build_vocab([chars])
logits = torch.full((tok.vocab_size,), float("-inf"))  # 特殊词元：不可能
for c, value in zip(chars, [3.2, 2.4, 2.0, 1.5, 0.5, 0.3, 0.1, 0.0]):
    logits[tok.vocab[c]] = value
already_written = [tok.vocab["好"]]  # 重复惩罚只看回答里已经写过的字

print("\n".join(settings_table(logits, already_written, tok, top=8)))

use_cjk_font()
fig = Figure(figsize=(9, 4.2), layout="constrained")
axes = fig.subplots(2, 3, sharey=True)
ids = [tok.vocab[c] for c in chars]
for ax, (name, cfg) in zip(axes.flat, SETTINGS):
    probs = process_logits(logits, cfg, already_written).softmax(-1)[ids]
    ax.bar(list(chars), probs.numpy(), color=["tab:blue" if p > 0 else "lightgray" for p in probs])
    ax.set_title(name)
axes[0, 0].set_ylabel("概率 probability")
axes[1, 0].set_ylabel("概率 probability")
fig.suptitle("同一组 logits 在不同采样设置下的概率（rep=1.3：\"好\"已写过）")
save_figure(fig, "ch08_sampling.png")
