"""第 3 章：对话格式与损失掩码 (chat format and loss mask)。

    python docs/scripts/loss_mask.py

用项目里唯一的渲染函数 studygpt.tokenizer.chat_format.render_conversation 把一段两轮对话变成 (ids, labels)，
逐个位置列出：输入词元、它的编号 ids[t]、标签 labels[t]（-100 = 不学）、以及这个位置要预测的 labels[t+1]（错开一位）。
图：runs/course/ch03_loss_mask.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch03_loss_mask.png）
"""
from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from studygpt.inspection.tokens import show_token
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX, render_conversation

turns = ["你好", "你好！", "1加1", "等于2。"]
tok = Tokenizer().build_vocab(turns)
ids, labels = render_conversation(turns, tok)
tokens = [show_token(tok.id_to_token[i]) for i in ids]

# 标签列是 labels[t]（词元 t 自己）；箭头右边是位置 t 要预测的 labels[t+1]（下一行的标签）
print("位置 t  ids[t]  labels[t]   输入词元 ids[t] → 要预测的 labels[t+1]")
for t, (token, i, label) in enumerate(zip(tokens, ids, labels)):
    target = labels[t + 1] if t + 1 < len(labels) else IGNORE_INDEX
    goal = show_token(tok.id_to_token[target]) if target != IGNORE_INDEX else "—（-100，不计损失）"
    print(f"{t:>6}  {i:>6}  {label:>9}   {token} → {goal}")
learned = sum(label != IGNORE_INDEX for label in labels)
print(f"共 {len(ids)} 个词元，{learned} 个参与损失：助手的回答内容和它结尾的 <end>")

# ===== 画图：一格一个词元，绿色 = 参与损失 =====
use_cjk_font()
fig = Figure(figsize=(0.62 * len(ids) + 0.4, 1.6), layout="constrained")
ax = fig.subplots()
for t, (token, label) in enumerate(zip(tokens, labels)):
    learn = label != IGNORE_INDEX
    ax.add_patch(Rectangle((t, 0), 0.95, 1, color="tab:green" if learn else "lightgray"))
    ax.text(t + 0.47, 0.5, token, ha="center", va="center", fontsize=9 if len(token) > 1 else 13)
ax.set_xlim(0, len(ids))
ax.set_ylim(0, 1)
ax.axis("off")
ax.set_title("绿色 = 参与损失的词元 (learned: the assistant's reply and its <end>)；灰色 = 标签 -100")
save_figure(fig, "ch03_loss_mask.png")
