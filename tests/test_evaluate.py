"""评估与成绩单的测试：每个指标在手算得出答案的输入上对得上；训练过的模型 bpc 更低；`studygpt eval` 端到端。"""
import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.cli.parser import main
from studygpt.corpus.builtin import load_eval_prompts, write_conv
from studygpt.evaluation.metrics import (
    char_ngrams,
    data_metrics,
    distinct_n,
    evaluate_model,
    format_table,
    generate_replies,
    repetition_rate,
    reply_metrics,
    unk_rate,
)
from studygpt.generation.generate import SamplingConfig
from studygpt.model.checkpoint import save_checkpoint
from studygpt.model.transformer import lm_loss
from studygpt.tokenizer.chat_format import render_conversation
from tests.conftest import DIALOGUES, tiny_model

PROMPTS = [{"prompt": "你好"}, {"prompt": "你会做什么？", "history": ["你是谁？", "我是StudyGPT，一个学习用的小模型。"]}]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """逐词生成全是小矩阵：两核机器上多线程的调度开销比计算还大，单线程快十几倍。"""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tok():
    from studygpt.tokenizer.char import Tokenizer
    return Tokenizer().build_vocab(t for d in DIALOGUES for t in d)


@pytest.fixture(scope="module")
def trained(tok):
    """在几段重复的对话上训练 100 步的极小模型 (d_model 32, 1 层)：背下了这些对话。"""
    model = tiny_model(tok.vocab_size, n_layers=1)
    batches = PackedBatches(build_windows(DIALOGUES * 4, tok, 64), batch_size=4, seq_len=64, pad_id=tok.token_id("<pad>"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    step = 0
    while step < 100:
        for batch in batches:
            loss, _ = lm_loss(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    return model.eval()


# ===== 1. 纯文本指标：手算的答案 =====
def test_char_ngrams():
    assert char_ngrams("你好呀", 2) == ["你好", "好呀"]
    assert char_ngrams("你好呀", 1) == ["你", "好", "呀"]
    assert char_ngrams("你", 2) == []


def test_distinct_n_known_answers():
    # 1-gram: a b a b a b → 6 个、2 种；2-gram: ab ba ab | ab → 4 个、2 种（不跨回答，没有 "ba" 接 "ab"）
    assert distinct_n(["abab", "ab"], 1) == pytest.approx(2 / 6)
    assert distinct_n(["abab", "ab"], 2) == pytest.approx(2 / 4)
    assert distinct_n(["你好", "再见"], 1) == 1.0
    assert distinct_n(["好", ""], 2) == 0.0 and distinct_n([], 1) == 0.0


def test_repetition_rate_known_answers():
    assert repetition_rate(["哈哈哈哈"]) == pytest.approx(0.5)     # 哈哈哈 ×2 → 1 − 1/2
    assert repetition_rate(["你好呀"]) == 0.0
    # ababab: aba bab aba bab → 1 − 2/4 = 0.5；abab: aba bab → 0；"ab" 不足 3 字，不参与平均
    assert repetition_rate(["ababab", "abab", "ab"]) == pytest.approx(0.25)
    assert repetition_rate(["aaaa"], n=1) == pytest.approx(0.75)
    assert repetition_rate(["ab", ""]) == 0.0


def test_unk_rate_counts_characters_outside_the_vocab(tok):
    assert unk_rate(DIALOGUES, tok) == 0.0
    assert unk_rate([["你好吗", "好"]], tok) == pytest.approx(1 / 4)   # 只有 "吗" 不在词表里
    assert unk_rate([["龘", "龘"]], tok) == 1.0


def test_reply_metrics_on_hand_made_replies():
    replies = [{"reply": "哈哈哈哈", "ended": True}, {"reply": "你好", "ended": False}]
    m = reply_metrics(replies)
    assert m["reply_chars"] == 3.0 and m["end_rate"] == 0.5
    assert m["distinct_1"] == pytest.approx(3 / 6) and m["distinct_2"] == pytest.approx(2 / 4)
    assert m["repetition_3"] == pytest.approx(0.5)


# ===== 2. 数据上的指标：bpc 的定义，逐段手算核对 =====
def test_bpc_equals_loss_times_tokens_over_ln2_chars(tok):
    model = tiny_model(tok.vocab_size).eval()
    dialogues = DIALOGUES + [["你好", "龘你好"]]  # 回答里的 "龘" 编码成 <unk>，算 1 个字符
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for turns in dialogues:  # 不打包、不用 evaluate_loss：每段对话单独前向，自己错位算交叉熵
            ids, labels = render_conversation(turns, tok)
            logits = model(torch.tensor([ids]))[0, :-1]
            targets = torch.tensor(labels[1:])
            keep = targets != -100
            nll += F.cross_entropy(logits[keep], targets[keep], reduction="sum").item()
            tokens += int(keep.sum())
    chars = sum(len(t) for d in dialogues for t in d[1::2])  # 只数助手的字；<|end|> 不是字符
    m = data_metrics(model, tok, dialogues, batch_size=2)
    assert m["tokens"] == tokens and m["chars"] == chars and m["dialogues"] == len(dialogues)
    assert m["loss"] == pytest.approx(nll / tokens, rel=1e-5)
    assert m["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    assert m["bpc"] == pytest.approx(m["loss"] * m["tokens"] / (math.log(2) * m["chars"]), rel=1e-9)
    assert m["bpc"] == pytest.approx(nll / (math.log(2) * chars), rel=1e-5)
    assert m["unk_rate"] == pytest.approx(1 / sum(len(t) for d in dialogues for t in d))


def test_trained_model_has_lower_bpc_on_held_in_data(tok, trained):
    untrained = tiny_model(tok.vocab_size, n_layers=1)
    before = evaluate_model(untrained, tok, DIALOGUES, prompts=[])["bpc"]
    after = evaluate_model(trained, tok, DIALOGUES, prompts=[])["bpc"]
    assert after < 0.5 * before, (before, after)


# ===== 3. 生成的回答与成绩单 =====
def test_eval_prompts_are_fixed_and_well_formed():
    items = load_eval_prompts()
    assert len(items) == 30 and len({(tuple(it["history"]), it["prompt"]) for it in items}) == 30
    assert {it["category"] for it in items} == {"greeting", "small_talk", "question", "multi_turn"}
    assert all(it["history"] for it in items if it["category"] == "multi_turn")


def test_generated_replies_are_reproducible_and_flag_the_end(tok, trained):
    cfg = SamplingConfig(temperature=0.7, top_k=50)
    replies = generate_replies(trained, tok, PROMPTS, (0, 1), 40, cfg)
    assert [(r["prompt"], r["seed"]) for r in replies] == [(p["prompt"], s) for p in PROMPTS for s in (0, 1)]
    assert replies == generate_replies(trained, tok, PROMPTS, (0, 1), 40, cfg)  # 固定种子 → 同样的回答
    assert all(r["ended"] for r in replies), replies  # 背下来的回答都会自己停下
    cut = generate_replies(trained, tok, PROMPTS, (0,), 3, cfg)  # 3 个词元写不完任何回答
    assert not any(r["ended"] for r in cut) and all(len(r["reply"]) == 3 for r in cut)


def test_evaluate_model_records_sampling_and_skips_what_is_not_asked(tok, trained):
    result = evaluate_model(trained, tok, DIALOGUES, prompts=PROMPTS, seeds=(0, 1, 2), max_new_tokens=40)
    assert result["sampling"] == {"temperature": 0.7, "top_k": 50, "top_p": None, "repetition_penalty": 1.0,
                                  "seeds": [0, 1, 2], "max_new_tokens": 40, "prompts": 2}
    assert len(result["replies"]) == 6 and result["end_rate"] == 1.0
    assert result["reply_chars"] == pytest.approx(sum(len(r["reply"]) for r in result["replies"]) / 6)
    json.dumps(result)  # 能原样写进 eval.json
    assert "bpc" not in evaluate_model(trained, tok, prompts=PROMPTS, seeds=(0,), max_new_tokens=4)
    assert "end_rate" not in evaluate_model(trained, tok, DIALOGUES, prompts=[])


def test_format_table_columns_delta_and_missing_values():
    a = {"loss": 2.0, "bpc": 3.0, "end_rate": 0.25}
    b = {"loss": 1.5, "bpc": 2.5, "end_rate": 0.5, "distinct_1": 0.8}
    lines = format_table({"runs/a": a, "runs/b": b}).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["指标 (metric)", "runs/a", "runs/b", "Δ"]
    assert set(lines[1]) <= {"|", "-", ":"}
    row = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]}
    assert row["loss ↓"] == ["2.000", "1.500", "-0.500"]
    assert row["自己停下 ends with end ↑"] == ["25.0%", "50.0%", "+25.0%"]
    assert row["distinct-1 ↑"] == ["—", "0.800", "—"]
    assert "困惑度 perplexity ↓" not in row  # 谁都没有的指标不出现
    single = format_table({"x": a}).splitlines()
    assert "Δ" not in single[0] and len(single) == 2 + 3


# ===== 4. 命令行 `studygpt eval` =====
def run_cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "studygpt", *args], capture_output=True, text=True, timeout=300,
                          env=env)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tok, trained):
    tmp = tmp_path_factory.mktemp("eval")
    save_checkpoint(tmp / "trained", trained, tok)
    save_checkpoint(tmp / "untrained", tiny_model(tok.vocab_size, n_layers=1), tok)
    write_conv(DIALOGUES, tmp / "data.conv")
    (tmp / "data.tsv").write_text("".join(f"{d[0]}\t{d[1]}\n" for d in DIALOGUES), encoding="utf-8")
    return tmp


def test_cli_eval_one_run_prints_table_and_writes_json(two_runs):
    result = run_cli("eval", str(two_runs / "trained"), "--data", str(two_runs / "data.conv"),
                     "--max-length", "8", "--seeds", "0")
    assert result.returncode == 0, result.stderr
    for label in ("每字符比特 bits/char", "distinct-2", "3-gram 重复率", "<unk> 比例", "自己停下"):
        assert label in result.stdout
    report = json.loads((two_runs / "trained" / "eval.json").read_text(encoding="utf-8"))
    assert report["data"] == str(two_runs / "data.conv") and report["dialogues"] == len(DIALOGUES)
    assert report["sampling"]["seeds"] == [0] and report["sampling"]["top_k"] == 50
    assert len(report["replies"]) == 30 and f"{report['bpc']:.3f}" in result.stdout


def test_cli_eval_compares_two_runs_side_by_side(two_runs):
    out = two_runs / "compare.json"
    a, b = str(two_runs / "untrained"), str(two_runs / "trained")
    result = run_cli("eval", a, b, "--data", str(two_runs / "data.tsv"), "--max-length", "4", "--seeds", "0",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("| 指标"))
    assert header.index(a) < header.index(b) < header.index("Δ")
    report = json.loads(out.read_text(encoding="utf-8"))
    assert list(report["runs"]) == [a, b]
    assert report["runs"][b]["bpc"] < report["runs"][a]["bpc"]
    bpc_row = next(line for line in result.stdout.splitlines() if "bits/char" in line)
    assert f"{report['runs'][b]['bpc'] - report['runs'][a]['bpc']:+.3f}" in bpc_row


def test_cli_eval_help():
    result = run_cli("eval", "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
    for flag in ("--data", "--out", "--seeds", "--max-length", "--temperature", "--top-k"):
        assert flag in result.stdout


@pytest.mark.parametrize("which", ["data", "run", "twice"])
def test_cli_eval_bad_input_is_one_line_exit_2(which, two_runs, tmp_path, capsys):
    run, data = str(two_runs / "trained"), str(two_runs / "data.conv")
    args = {"data": ["eval", run, "--data", str(tmp_path / "missing.conv")],
            "run": ["eval", str(tmp_path / "no_such_run"), "--data", data],
            "twice": ["eval", run, run, "--data", data]}[which]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("错误 (error):") and err.count("\n") == 1, err


def test_loss_summary_is_the_one_perplexity_and_bpc_formula():
    from studygpt.training.validation import loss_summary
    out = loss_summary(total_nll=20.0, tokens=10, chars=8)
    assert out["loss"] == 2.0 and out["tokens"] == 10 and out["chars"] == 8
    assert math.isclose(out["perplexity"], math.exp(2.0)) and math.isclose(out["bpc"], 20.0 / (8 * math.log(2)))
    assert loss_summary(0.0, 0, 0)["loss"] == 0.0  # 没有词元时不除以 0
