"""第 3 章：对话格式与损失掩码 (chat format and loss mask)。

    python docs/scripts/loss_mask.py

用项目里唯一的渲染函数 studygpt.chat_format.render_conversation 把一段两轮对话变成 (ids, labels)，
逐个位置列出：输入词元、它的编号、标签（-100 = 不学）、以及"这个位置要预测的下一个词元"（错开一位）。
图：docs/zh/img/ch03_loss_mask.png（在仓库根目录运行）
"""
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from studygpt.chat_format import IGNORE_INDEX, render_conversation
from studygpt.inspect_tools import show_token
from studygpt.plotting import setup_cjk_font
from studygpt.tokenizer import Tokenizer

IMG = Path("docs/zh/img")

turns = ["你好", "你好！", "1加1", "等于2。"]
tok = Tokenizer().build_vocab(turns)
ids, labels = render_conversation(turns, tok)
tokens = [show_token(tok.id_to_token[i]) for i in ids]

print("位置  编号   标签   输入词元 → 这个位置要预测的（标签错开一位）")
for t, (token, i, label) in enumerate(zip(tokens, ids, labels)):
    target = labels[t + 1] if t + 1 < len(labels) else IGNORE_INDEX
    goal = show_token(tok.id_to_token[target]) if target != IGNORE_INDEX else "—（不计损失）"
    print(f"{t:>3}  {i:>4}  {label:>5}   {token} → {goal}")
learned = sum(label != IGNORE_INDEX for label in labels)
print(f"共 {len(ids)} 个词元，{learned} 个参与损失：助手的回答内容和它结尾的 <end>")

# ===== 画图：一格一个词元，绿色 = 参与损失 =====
setup_cjk_font()
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
IMG.mkdir(parents=True, exist_ok=True)
fig.savefig(IMG / "ch03_loss_mask.png", dpi=100)
print(f"图 (figure): {IMG / 'ch03_loss_mask.png'}")
