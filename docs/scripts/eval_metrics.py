"""第 9 章：评估指标 (evaluation metrics)，用 studygpt.evaluation.metrics 里真正的函数算给你看。

    python docs/scripts/eval_metrics.py

1. 数据上的指标：loss（nats/词元）、困惑度 perplexity = e^loss、每字符比特数 bpc = 总损失 / (ln2 · 字符数)。
   一个没训练过的模型在每个字上都"瞎猜"，所以 bpc ≈ log2(词表大小)；
2. 回答上的指标：distinct-1/2（多样性）、3-gram 重复率、自己停下的比例——用手写的"好回答"和"复读机"比一比。
"""
import math

import torch

from studygpt.corpus.builtin import builtin_corpus
from studygpt.evaluation.metrics import data_metrics, reply_metrics
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer

# ===== 1. 没训练过的模型：loss ≈ ln V，bpc ≈ log2 V =====
dialogues = builtin_corpus().own[:100]
tok = Tokenizer().build_vocab(t for d in dialogues for t in d)
torch.manual_seed(0)
model = DialogueModel(vocab_size=tok.vocab_size, d_model=32, n_head=4, n_layers=1, max_len=128)
m = data_metrics(model, tok, dialogues)
print(f"未训练 (untrained): loss {m['loss']:.3f}（ln V = {math.log(tok.vocab_size):.3f}）· "
      f"困惑度 {m['perplexity']:.0f}（V = {tok.vocab_size}）· bpc {m['bpc']:.3f}（log2 V = {math.log2(tok.vocab_size):.3f}）"
      f" · {m['tokens']} 个被评估的词元，{m['chars']} 个字符")

# ===== 2. 回答的多样性与重复 =====
good = [{"reply": r, "ended": True} for r in ["你好！我是StudyGPT。", "今天天气不错，出去走走吧。", "23加58等于81。"]]
parrot = [{"reply": r, "ended": e} for r, e in [("哈哈哈哈哈哈哈哈", False), ("我是我是我是我是", False), ("哈哈哈哈", True)]]
for name, replies in [("好回答 (good)", good), ("复读机 (parrot)", parrot)]:
    r = reply_metrics(replies)
    print(f"{name}: distinct-1 {r['distinct_1']:.3f} · distinct-2 {r['distinct_2']:.3f} · "
          f"3-gram 重复率 {r['repetition_3']:.3f} · 自己停下 {r['end_rate']:.0%}")
