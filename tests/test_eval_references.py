"""有参考答案的回答指标 (`studygpt eval --references`)：每个数在手算得出答案的小例子上对得上；
两个基线选对回答；命令行打印第二张表并写进 eval.json；坏输入一行错误、退出码 2。"""
import json
import math

import pytest

from studygpt.cli.parser import main
from studygpt.corpus.builtin import write_conv
from studygpt.evaluation.references import (
    baseline_replies,
    bleu,
    char_f1,
    most_frequent_reply,
    reference_metrics,
    reference_pairs,
    training_pairs,
)
from studygpt.evaluation.retrieval import RetrievalIndex
from studygpt.model.checkpoint import save_checkpoint
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import DIALOGUES, tiny_model

# 两对 (回答, 参考)
REPLIES = ["我很喜欢猫", "好的"]
REFERENCES = ["我也喜欢猫", "好的呀"]


# ===== 1. 指标：手算 =====
def test_corpus_bleu_2_by_hand():
    # 1-gram：第一对 我很喜欢猫 里 我 喜 欢 猫 在参考里，4/5；第二对 好 的 都在，2/2 → p1 = (4+2)/(5+2) = 6/7
    # 2-gram：第一对 我很 很喜 喜欢 欢猫 中 喜欢 欢猫 命中，2/4；第二对 好的 命中，1/1 → p2 = (2+1)/(4+1) = 3/5
    # 短句惩罚：回答共 c = 5+2 = 7 字，参考共 r = 5+3 = 8 字，c < r → BP = exp(1 − 8/7)
    expected = 100 * math.exp(1 - 8 / 7) * math.sqrt(6 / 7 * 3 / 5)
    assert bleu(REPLIES, REFERENCES, 2) == pytest.approx(expected)  # ≈ 62.17
    # 语料级 (corpus) 与逐句平均不同：第二对单独算是 BP·1 = exp(1 − 3/2)，平均会低得多
    assert bleu(["我 很喜欢猫", "好的 "], REFERENCES, 2) == pytest.approx(expected)  # 空白不算字


def test_bleu_4_smooths_a_zero_precision_with_method1():
    # 第一对单独：p1 = 4/5，p2 = 2/4，3-gram 我很喜 很喜欢 喜欢猫 中 喜欢猫 命中 → p3 = 1/3，
    # 4-gram 我很喜欢 很喜欢猫 一个也不中 → method1 把 0/2 换成 0.1/2；长度相同 BP = 1
    expected = 100 * (4 / 5 * 2 / 4 * 1 / 3 * 0.1 / 2) ** 0.25
    assert bleu(REPLIES[:1], REFERENCES[:1], 4) == pytest.approx(expected)  # ≈ 28.57
    # 一字不差也不一定是 100：NLTK 给没有 k-gram 的短回答的分母记 1 (max(1, 0))。好的呀 只有 3 个字、没有 4-gram，
    # 所以 p4 = (2 + 0) / (2 + 1) = 2/3，p1 = p2 = p3 = 1 → BLEU-4 = (2/3)^(1/4)
    assert bleu(REFERENCES, REFERENCES, 4) == pytest.approx(100 * (2 / 3) ** 0.25)  # ≈ 90.36
    assert bleu(REFERENCES[:1], REFERENCES[:1], 4) == pytest.approx(100.0)


def test_dist_and_char_f1_by_hand():
    # Dist-1：哈 哈 哈 你 好 共 5 个 1-gram、3 种 → 60；Dist-2：哈哈 哈哈 你好 共 3 个、2 种 → 66.67（n-gram 不跨回答）
    out = reference_metrics(["哈哈哈", "你 好"], ["哈", "你好"])
    assert out["dist_1"] == pytest.approx(60.0) and out["dist_2"] == pytest.approx(200 / 3)
    # 字符 F1：哈哈哈 vs 哈：共同 1 字，P = 1/3，R = 1 → 2·(1/3)·1 / (4/3) = 0.5；"你 好" vs 你好：完全一样 → 1
    assert char_f1("哈哈哈", "哈") == pytest.approx(0.5) and char_f1("你 好", "你好") == 1.0
    assert out["char_f1"] == pytest.approx(100 * (0.5 + 1) / 2)
    # 我很喜欢猫 vs 我也喜欢猫：共同 4 字，P = R = 4/5 → 0.8；好的 vs 好的呀：P = 1，R = 2/3 → 0.8
    assert char_f1(REPLIES[0], REFERENCES[0]) == pytest.approx(0.8)
    assert char_f1(REPLIES[1], REFERENCES[1]) == pytest.approx(0.8)
    assert char_f1("", "你好") == 0.0 and char_f1("猫", "狗") == 0.0


# ===== 2. 拆对与两个基线 =====
def test_pairs_take_the_last_reply_as_reference_and_every_reply_for_training():
    dialogue = ["你是谁？", "我是小模型。", "你会做什么？", "我会聊天。"]
    assert reference_pairs([dialogue]) == [(["你是谁？", "我是小模型。", "你会做什么？"], "我会聊天。")]
    assert training_pairs([dialogue]) == [(["你是谁？"], "我是小模型。"), (dialogue[:3], "我会聊天。")]


TRAIN = [["今天天气怎么样？", "晴天，出去走走吧。"], ["你喜欢吃什么？", "火锅"], ["晚安", "哈哈"],
         ["我的猫呢？", "哈哈"], ["好的", "嗯嗯"], ["你好", "嗯嗯"], ["在吗", "嗯嗯"]]


def test_most_frequent_reply_counts_replies_and_breaks_ties_by_first_seen():
    assert most_frequent_reply(training_pairs(TRAIN)) == "嗯嗯"  # 3 次
    assert most_frequent_reply(training_pairs(TRAIN[:4])) == "哈哈"  # 2 次
    assert most_frequent_reply([([], "甲"), ([], "乙"), ([], "乙"), ([], "甲")]) == "甲"  # 并列取先出现的


def test_retrieval_picks_the_reply_of_the_most_similar_context():
    pairs = reference_pairs([["明天天气怎么样？", "?"], ["你最喜欢吃什么菜", "?"], ["xyz", "?"], ["我的天", "?"]])
    replies = baseline_replies(training_pairs(TRAIN), pairs)
    assert replies["most_frequent"] == ["嗯嗯"] * 4
    # 共同的 n-gram 天气 怎么 …… → 天气那句；吃什么 → 火锅；谁也不沾边 → 回退到最常见的回答
    assert replies["retrieval"][:3] == ["晴天，出去走走吧。", "火锅", "嗯嗯"]
    # 我的天：与 我的猫呢？ 共享 我 的 我的，与天气那句只共享 天，但两个 天 字的权重加起来也比不过
    assert replies["retrieval"][3] == "哈哈"


def test_retrieval_weights_rare_characters_above_common_ones():
    # 查询 "的猫" 与第一句共享常见的 的，与第二句共享少见的 猫：idf 让 猫 更重
    index = RetrievalIndex([["我的书"], ["猫"], ["你的"], ["他的"]], ["书", "猫", "你", "他"], fallback="—")
    assert index.query(["的猫"]) == "猫"
    # 只问 的：你的 与 他的 分数相同（比 我的书 高：句子短，的 占的比重大），并列时取先出现的 你的
    assert index.query(["的"]) == "你"


# ===== 3. 命令行 `studygpt eval --references` =====
HELD_OUT = [["你好", "你好！很高兴见到你。"], ["今天天气怎么样？", "今天天气不错。"]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("refs")
    tok = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
    write_conv(DIALOGUES, tmp / "train.conv")
    write_conv(HELD_OUT, tmp / "held.conv")
    write_conv([["嗨", "嗨嗨"]] * 3, tmp / "other.conv")
    run_info = {"data": [str(tmp / "train.conv")], "out": str(tmp / "run"), "val_fraction": 0.02}
    save_checkpoint(tmp / "run", tiny_model(tok.vocab_size, n_layers=1), tok, extra={"run": run_info})
    save_checkpoint(tmp / "bare", tiny_model(tok.vocab_size, n_layers=1), tok)  # 没有训练设置 (run)
    (tmp / "no_reply.conv").write_text("E\nM 只有一句话\nE\nM 还是一句\n", encoding="utf-8")
    return tmp


def test_cli_eval_references_prints_the_rows_and_writes_eval_json(runs, capsys):
    run = str(runs / "run")
    assert main(["eval", run, "--data", str(runs / "held.conv"), "--references", "--seeds", "0",
                 "--max-length", "4"]) == 0
    out = capsys.readouterr().out
    for label in ("BLEU-2", "BLEU-4", "Dist-1", "Dist-2", "字符 F1", "基线 最常见回答", "基线 检索", "bits/char"):
        assert label in out, label
    report = json.loads((runs / "run" / "eval.json").read_text(encoding="utf-8"))["references"]
    assert report["train_data"] == [str(runs / "train.conv")]  # 默认读 RUN 自己的训练文件
    assert report["sampling"]["top_p"] == 0.9 and report["sampling"]["temperature"] == 0.7 and report["seed"] == 0
    assert set(report["metrics"]) == {"model", "most_frequent", "retrieval"}
    assert set(report["metrics"]["model"]) == {"bleu_2", "bleu_4", "dist_1", "dist_2", "char_f1"}
    assert [p["reference"] for p in report["pairs"]] == [d[-1] for d in HELD_OUT]
    bleu_row = next(line for line in out.splitlines() if line.startswith("| BLEU-2"))
    assert f"{report['metrics']['retrieval']['bleu_2']:.2f}" in bleu_row


def test_cli_eval_train_data_overrides_the_runs_own_files(runs, capsys):
    out = runs / "other.json"
    assert main(["eval", str(runs / "bare"), "--data", str(runs / "held.conv"), "--references", "--seeds", "0",
                 "--max-length", "4", "--train-data", str(runs / "other.conv"), "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))["references"]
    assert report["train_data"] == [str(runs / "other.conv")]
    assert {p["most_frequent"] for p in report["pairs"]} == {"嗨嗨"}


def test_cli_eval_references_on_a_quickstart_run_uses_the_builtin_corpus(runs, capsys):
    """快速上手的检查点记的训练语料是 <builtin>：基线用内置语料（与训练时同一个种子），不报"找不到"。"""
    from studygpt.corpus.builtin import builtin_corpus
    corpus = builtin_corpus(seed=0)
    tok = Tokenizer().build_vocab(t for d in corpus.own + corpus.chatterbot + corpus.addition_train for t in d)
    run_info = {"data": ["<builtin>"], "out": str(runs / "qs"), "train": {"seed": 0}}
    save_checkpoint(runs / "qs", tiny_model(tok.vocab_size, n_layers=1), tok, extra={"run": run_info})
    out = runs / "qs.json"
    assert main(["eval", str(runs / "qs"), "--data", str(runs / "held.conv"), "--references", "--seeds", "0",
                 "--max-length", "4", "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))["references"]
    assert report["train_data"] == ["<builtin>"]
    assert {p["most_frequent"] for p in report["pairs"]} <= {d[i] for d in corpus.own + corpus.chatterbot
                                                              + corpus.addition_train for i in range(1, len(d), 2)}


@pytest.mark.parametrize("which", ["no_reply", "train_data_alone", "bare_run", "missing_train_file"])
def test_cli_eval_references_bad_input_is_one_line_exit_2(which, runs, capsys):
    held = str(runs / "held.conv")
    args = {"no_reply": [str(runs / "run"), "--data", str(runs / "no_reply.conv"), "--references"],
            "train_data_alone": [str(runs / "run"), "--data", held, "--train-data", str(runs / "other.conv")],
            "bare_run": [str(runs / "bare"), "--data", held, "--references"],
            "missing_train_file": [str(runs / "run"), "--data", held, "--references",
                                   "--train-data", str(runs / "missing.conv")]}[which]
    assert main(["eval", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("错误 (error):") and err.count("\n") == 1, err
