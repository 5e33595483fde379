"""第 2 章：字 → 词元 (characters → tokens)。字的频率很不均匀：少数常用字占了大部分文字。

    python docs/scripts/char_frequency.py

用 studygpt.tokenizer.char.Tokenizer 在内置语料上建词表，看：有多少种字、前 N 个字覆盖了多少文字、
只出现一次的字有多少；词表小了以后，没进词表的字怎样变成 <unk>。
图：runs/course/ch02_char_frequency.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch02_char_frequency.png）
"""
from collections import Counter
from itertools import accumulate

from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure

from studygpt.corpus.builtin import builtin_corpus
from studygpt.tokenizer.char import Tokenizer

texts = [t for d in builtin_corpus().train_dialogues(own_repeat=1) for t in d]
counts = Counter("".join(texts))
ranked = [n for _, n in counts.most_common()]
total = sum(ranked)
print(f"{total:,} 个字，{len(counts)} 种；只出现 1 次的字 {sum(n == 1 for n in ranked)} 种")
print("最常见的 15 个字:", " ".join(f"{c!r}{n}" for c, n in counts.most_common(15)))
covered, cum = {}, 0
for rank, n in enumerate(ranked, start=1):
    cum += n
    for goal in (0.5, 0.9, 0.99):
        if goal not in covered and cum >= goal * total:
            covered[goal] = rank
print("覆盖文字所需的字数 (chars needed for coverage): "
      + "，".join(f"{g:.0%} → 前 {r} 个字" for g, r in covered.items()))

# 词表 = 7 个特殊词元 + 最常见的字；小词表里放不下的字编码成 <unk>（编号 4）
sentence = "注意力机制让模型看见前文。"
for size in (10000, 300):
    tok = Tokenizer().build_vocab(texts, max_vocab_size=size)
    ids = tok.encode(sentence)
    print(f"词表 {tok.vocab_size:>4} 个词元: {sentence} → {ids}  (<unk> {ids.count(tok.token_id('<unk>'))} 个)")

use_cjk_font()
fig = Figure(figsize=(7, 3.2), layout="constrained")
left, right = fig.subplots(1, 2)
left.loglog(range(1, len(ranked) + 1), ranked)
left.set_title("字频 (rank–frequency, 对数坐标)")
left.set_xlabel("排名 rank")
left.set_ylabel("出现次数 count")
coverage = [c / total for c in accumulate(ranked)]
right.plot(range(1, len(ranked) + 1), coverage)
right.set_title("前 N 个字覆盖的文字比例 (coverage)")
right.set_xlabel("词表里的字数 N")
right.grid(alpha=0.3)
save_figure(fig, "ch02_char_frequency.png")
