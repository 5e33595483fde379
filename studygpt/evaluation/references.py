"""有参考答案的回答指标 (reference-based reply metrics)：`studygpt eval RUN --data held_out.conv --references`。

留出数据里的每段对话拆成一对 (上下文, 参考回答)：参考回答 = 最后一句助手的话，上下文 = 它前面的所有话。
模型看着上下文写一句回答，再和参考回答比：

- BLEU-2 / BLEU-4：回答与参考共有的字符 n-gram 有多少（修正的 n-gram 精确率 modified n-gram precision
  的几何平均 × 短句惩罚 brevity penalty）；
- Dist-1 / Dist-2：全部回答里不同的 1/2-gram 占比（多样性，与参考无关）；
- 字符 F1 (char F1)：回答与参考的"字袋" (bag of characters) 的精确率与召回率的调和平均，逐对算、再平均。

算法照 CDial-GPT（thu-coai/CDial-GPT，README.md 的"评测结果"一节）报告 STC 结果的方式，好让数字能并排看：
它的仓库里没有评测脚本，计算方式来自维护者在 issue 里的说明——
  issue #1：BLEU 用 NLTK 计算；Dist 乘 100（BLEU 起初误乘了 1000，现在的 README 已改成乘 100）；
  issue #33：BLEU-2 权重 (0.5, 0.5)，BLEU-4 用默认权重 (0.25,)*4，平滑 SmoothingFunction().method1，NLTK 3.4.3；
  issue #41：同上；提问者贴的代码把回答与参考都拆成单个字符，参考写成三层列表——这是 corpus_bleu 的输入形状，
  所以这里用 corpus_bleu（整个测试集一起数 n-gram，而不是逐句 sentence_bleu 再平均）。这一点是推断，不是原话。
  它的回答是 BERT 中文分词器的词元：汉字一字一个，英文与数字是 WordPiece；我们一律按字符算，只去掉空白。
解码也照它：nucleus sampling p=0.9、temperature 0.7、不截 top-k，回答最多 30 个词元（chat_res.py 的默认）。

两个基线 (baselines) 在同一次运行里算，作为成绩单的参照：
- 最常见回答 (most frequent)：训练语料里出现次数最多的那句助手回答，对谁都这么说；
- 检索 (retrieval)：训练语料里与上下文最像（字符 n-gram TF-IDF 余弦）的上下文后面的回答，见 retrieval.py。
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

from studygpt.evaluation.metrics import distinct_n, generate_replies
from studygpt.evaluation.retrieval import RetrievalIndex
from studygpt.generation.generate import GenerationSettings, SamplingConfig
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer

# CDial-GPT 的解码设置：p=0.9、temperature 0.7、top_k 不用；回答最多 30 个词元
REFERENCE_SETTINGS = GenerationSettings(SamplingConfig(temperature=0.7, top_p=0.9), max_length=30)
BLEU_WEIGHTS = {2: (0.5, 0.5), 4: (0.25, 0.25, 0.25, 0.25)}

Pair = tuple[list[str], str]  # (上下文：回答前的所有话, 参考回答)


# ===== 1. 拆成 (上下文, 回答) 对 =====
def reference_pairs(dialogues: Sequence[Sequence[str]]) -> list[Pair]:
    """每段留出对话 → 一对 (上下文, 参考回答)：参考 = 最后一句（总是助手说的），上下文 = 前面所有的话。

    read_dialogues 保证每段对话是用户、助手交替的偶数句，所以最后一句一定是助手的回答。
    """
    return [(list(turns[:-1]), turns[-1]) for turns in dialogues]


def training_pairs(dialogues: Sequence[Sequence[str]]) -> list[Pair]:
    """训练对话里的每一句助手回答都是一对：(它前面的所有话, 这句回答)。检索基线在这些对里找。"""
    return [(list(turns[:i]), turns[i]) for turns in dialogues for i in range(1, len(turns), 2)]


# ===== 2. 指标 (metrics)：都乘 100，与 CDial-GPT 的表格同一个尺度 =====
def chars(text: str) -> list[str]:
    """BLEU、Dist、字符 F1 的"词"：一个非空白字符一个。"""
    return [c for c in text if not c.isspace()]


def bleu(replies: Sequence[str], references: Sequence[str], n: int) -> float:
    """语料级 BLEU-n (corpus BLEU) × 100，在字符上算，NLTK 的 corpus_bleu + 平滑 method1。

    p_k = 全部回答里与参考重合的 k-gram 数（每个 k-gram 最多算它在参考里出现的次数）/ 回答的 k-gram 总数；
    method1 把分子为 0 的 p_k 换成 0.1 / 分母（免得 log 0）；
    短句惩罚 BP = 1（回答总字数 c ≥ 参考总字数 r 时），否则 exp(1 − r / c)；
    BLEU-n = BP · exp(Σ_k w_k · ln p_k)，权重 w 见 BLEU_WEIGHTS。
    注意 NLTK 给短于 k 个字的回答的分母记 1（max(1, 0)，免得除以 0）：短回答很多时，
    哪怕与参考一字不差，BLEU-4 也到不了 100。CDial-GPT 的数字也是这样算出来的。
    """
    return 100 * corpus_bleu([[chars(r)] for r in references], [chars(h) for h in replies],
                             weights=BLEU_WEIGHTS[n], smoothing_function=SmoothingFunction().method1)


def char_f1(reply: str, reference: str) -> float:
    """一对的字符 F1（0 到 1）：把两句话看成字的多重集合 (bag of characters)，空白不算。

    共同字数 = Σ_字 min(回答里的次数, 参考里的次数)；精确率 P = 共同 / 回答字数，召回率 R = 共同 / 参考字数，
    F1 = 2PR / (P + R)。没有共同的字（包括回答为空）时为 0。
    """
    common = sum((Counter(chars(reply)) & Counter(chars(reference))).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(chars(reply)), common / len(chars(reference))
    return 2 * precision * recall / (precision + recall)


def reference_metrics(replies: Sequence[str], references: Sequence[str]) -> dict:
    """一组回答 vs 参考 → dict(bleu_2, bleu_4, dist_1, dist_2, char_f1)，都是 0–100 的数。

    Dist-n 与 metrics.distinct_n 相同（不同的 n-gram 数 / n-gram 总数，n-gram 不跨回答），只是先去掉空白再乘 100；
    char_f1 是逐对字符 F1 的平均 × 100。
    """
    stripped = ["".join(chars(r)) for r in replies]
    return {"bleu_2": bleu(replies, references, 2), "bleu_4": bleu(replies, references, 4),
            "dist_1": 100 * distinct_n(stripped, 1), "dist_2": 100 * distinct_n(stripped, 2),
            "char_f1": 100 * sum(map(char_f1, replies, references)) / max(len(references), 1)}


# ===== 3. 基线 (baselines)：不用模型的两种回答 =====
def most_frequent_reply(train: Sequence[Pair]) -> str:
    """训练语料里出现次数最多的助手回答；次数相同取先出现的（Counter 按插入顺序排并列）。"""
    return Counter(reply for _, reply in train).most_common(1)[0][0]


def baseline_replies(train: Sequence[Pair], pairs: Sequence[Pair]) -> dict[str, list[str]]:
    """每个留出上下文的两种基线回答：{"most_frequent": [...], "retrieval": [...]}，顺序同 pairs。"""
    frequent = most_frequent_reply(train)
    index = RetrievalIndex([c for c, _ in train], [r for _, r in train], fallback=frequent)
    return {"most_frequent": [frequent] * len(pairs), "retrieval": [index.query(c) for c, _ in pairs]}


# ===== 4. 模型的回答与汇总 =====
def model_replies(model: DialogueModel, tokenizer: Tokenizer, pairs: Sequence[Pair], seed: int,
                  settings: GenerationSettings = REFERENCE_SETTINGS) -> list[str]:
    """模型对每个上下文写一句回答（固定种子 seed，所以两次评估得到同样的回答）。"""
    prompts = [{"prompt": context[-1], "history": context[:-1]} for context, _ in pairs]
    replies = generate_replies(model, tokenizer, prompts, [seed], settings.max_length, settings.sampling)
    return [r["reply"] for r in replies]


def reference_report(pairs: Sequence[Pair], columns: dict[str, list[str]]) -> dict:
    """{列名: 回答列表} → eval.json 里 "references" 的内容。

    出: {"metrics": {列名: reference_metrics}, "pairs": [{"context", "reference", 列名: 回答, ...}]}。
    """
    references = [ref for _, ref in pairs]
    return {"metrics": {name: reference_metrics(replies, references) for name, replies in columns.items()},
            "pairs": [{"context": context, "reference": ref, **{name: replies[i] for name, replies in columns.items()}}
                      for i, (context, ref) in enumerate(pairs)]}


# (键 key, 显示的名字, 格式)：format_table 的行；都是越高越好
REFERENCE_ROWS = [
    ("bleu_2", "BLEU-2 ↑", "{:.2f}"),
    ("bleu_4", "BLEU-4 ↑", "{:.2f}"),
    ("dist_1", "Dist-1 ↑", "{:.2f}"),
    ("dist_2", "Dist-2 ↑", "{:.2f}"),
    ("char_f1", "字符 F1 char F1 ↑", "{:.2f}"),
]
