"""第 12 章：字节级 BPE (byte-level BPE)。词表越大，一个词元平均装下的字越多，句子越短。

    python docs/scripts/bpe_tokens.py

在内置语料上训练几种大小的 BPE（studygpt.tokenizer.bpe.BPETokenizer，训练交给 Hugging Face tokenizers），
看同一句话被切成什么样、平均每个词元几个字符；再画出 benchmarks/tokenizer_compare.py 在真实语料上量到的结果
（benchmarks/results/tokenizer_compare.json，有的话）。
图：runs/course/ch12_bpe.png（在仓库根目录运行；加 --update-docs 则更新课程配图 docs/zh/img/ch12_bpe.png）
"""
import json
from pathlib import Path

from course_figures import save_figure, use_cjk_font
from matplotlib.figure import Figure

from studygpt.corpus.builtin import builtin_corpus
from studygpt.tokenizer.bpe import BPETokenizer
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.lab import token_stats

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "tokenizer_compare.json"

texts = [t for d in builtin_corpus().train_dialogues(own_repeat=1) for t in d]
print(f"内置语料 {len(texts):,} 句，{sum(map(len, texts)):,} 个字符")
sentence = "注意力机制让模型看见前文。你好，鬱金香！"
char = Tokenizer().build_vocab(texts)
rows = [("字符级 char", char.vocab_size, 1.0)]
print(f"字符级 {char.vocab_size:>5}: " + " | ".join(char.id_to_token[i] for i in char.encode(sentence)))
for size in (300, 500, 1000, 2000, 4000):
    bpe = BPETokenizer.train(texts, vocab_size=size)
    stats = token_stats(bpe, texts)
    rows.append((f"BPE {size}", bpe.vocab_size, stats["chars_per_token"]))
    print(f"BPE    {bpe.vocab_size:>5}: " + " | ".join(bpe.id_to_token[i] for i in bpe.encode(sentence))
          + f"   （平均每个词元 {stats['chars_per_token']:.2f} 个字符）")

use_cjk_font()
fig = Figure(figsize=(8, 3.4), layout="constrained")
left, right = fig.subplots(1, 2)
left.plot([r[1] for r in rows[1:]], [r[2] for r in rows[1:]], marker="o", label="字节级 BPE")
left.scatter([char.vocab_size], [1.0], color="C1", zorder=3, label="字符级 char")
left.set_xscale("log")
left.set_xticks([300, 500, 1000, 2000, 4000], labels=["300", "500", "1000", "2000", "4000"])
left.minorticks_off()
left.set_xlabel("词表大小 vocab size")
left.set_ylabel("每个词元的字符数 chars/token")
left.set_title("内置语料：词表越大，词元越长")
left.legend()
left.grid(alpha=0.3)
if RESULTS.is_file():
    measured = json.loads(RESULTS.read_text(encoding="utf-8"))
    names = [r["tokenizer"] for r in measured["results"]]
    right.bar(names, [r["heldout_bpc"] for r in measured["results"]], color=["C1"] + ["C0"] * (len(names) - 1))
    for x, r in enumerate(measured["results"]):
        right.text(x, r["heldout_bpc"], f"{r['heldout_bpc']:.2f}\n嵌入 {r['embedding_share']:.0%}", ha="center",
                   va="bottom", fontsize=8)
    minutes = measured["settings"]["cpu_minutes"]
    right.set_title(f"真实语料，同样 {minutes:g} 分钟 CPU：留出 bpc（越低越好）", fontsize=9)
    right.set_ylabel("每字符比特 bits/char")
    right.set_ylim(0, max(r["heldout_bpc"] for r in measured["results"]) * 1.25)
else:
    right.text(0.5, 0.5, "先运行 benchmarks/tokenizer_compare.py", ha="center", transform=right.transAxes)
    right.set_axis_off()
save_figure(fig, "ch12_bpe.png")
