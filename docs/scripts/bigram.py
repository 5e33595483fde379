"""第 1 章：最简单的语言模型——数一数"哪个字后面跟着哪个字"（二元模型 bigram model）。

    python docs/scripts/bigram.py

读内置语料 → 统计相邻的两个字 → P(下一个字 | 这个字) → 看"你"后面最可能是什么 → 按概率抽样写一句 →
算它在语料上的平均交叉熵 (cross-entropy)，和"什么都不懂、每个字一样可能"的 ln(V) 比一比。
图：runs/course/ch01_bigram.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch01_bigram.png）
"""
import math
import random
from collections import Counter, defaultdict

from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure

from studygpt.corpus.builtin import builtin_corpus

# ===== 1. 数数 (count) =====
texts = [t for d in builtin_corpus().train_dialogues(own_repeat=1) for t in d]
pairs: dict[str, Counter] = defaultdict(Counter)  # pairs[a][b] = "a 后面紧跟着 b" 出现的次数
for text in texts:
    for a, b in zip(text, text[1:]):
        pairs[a][b] += 1
vocab = sorted({c for t in texts for c in t})
print(f"语料 (corpus): {len(texts)} 句，{sum(map(len, texts)):,} 个字，{len(vocab)} 种不同的字")


def next_probs(a: str) -> list[tuple[str, float]]:
    """P(b | a) = count(a, b) / count(a, ·)，从大到小。"""
    total = sum(pairs[a].values())
    return [(b, n / total) for b, n in pairs[a].most_common()]


# ===== 2. "你"的后面是什么 =====
top = next_probs("你")[:10]
print("P(下一个字 | 你)：" + "  ".join(f"{b} {p:.1%}" for b, p in top))

# ===== 3. 按概率一个字一个字地写 (sample one char at a time) =====
rng = random.Random(0)
for _ in range(3):
    out = "你"
    while len(out) < 20 and pairs[out[-1]]:
        chars, probs = zip(*next_probs(out[-1]))
        out += rng.choices(chars, probs)[0]
    print("抽样 (sample):", out)

# ===== 4. 它有多好？平均交叉熵 (average cross-entropy, nats per char) =====
nll = [-math.log(dict(next_probs(a))[b]) for t in texts for a, b in zip(t, t[1:])]
print(f"二元模型的平均交叉熵 = {sum(nll) / len(nll):.3f} nats；"
      f"每个字一样可能时 = ln({len(vocab)}) = {math.log(len(vocab)):.3f} nats")

# ===== 5. 画图 =====
use_cjk_font()
fig = Figure(figsize=(6, 3.2), layout="constrained")
ax = fig.subplots()
ax.bar([b for b, _ in top], [p for _, p in top], color="tab:blue")
ax.set_title("二元模型：P(下一个字 | 你)  (bigram next-char probabilities)")
ax.set_ylabel("概率 probability")
save_figure(fig, "ch01_bigram.png")
