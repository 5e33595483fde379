"""DPO (posttrain/dpo.py) 的测试：开始时损失 = log 2、一步梯度让 chosen 相对 rejected 更可能、只算回答的词元、
内置偏好对对错分明、偏好文件的坏行一句话报错（带行号）。"""
import json
import math

import pytest
import torch

from studygpt.cli.parser import main
from studygpt.errors import StudyGPTError
from studygpt.model.checkpoint import save_checkpoint
from studygpt.model.transformer import lm_loss
from studygpt.posttrain.dpo import (
    DPOObjective,
    Pair,
    PairBatches,
    builtin_pairs,
    chosen_nll,
    dpo_loss,
    evaluate_preferences,
    pair_batch,
    preference_accuracy,
    read_pairs,
    sequence_logprobs,
)
from studygpt.posttrain.tasks import get_task, reward
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import tiny_model

PAIRS = [Pair("12加34等于多少？", "12加34等于46。", "12加34等于4"),
         Pair("50加21等于多少？", "50加21等于71。", "50加21等于81。"),
         Pair("你好", "你好！很高兴见到你。", "你好你好你好你好")]


@pytest.fixture
def setup():
    tokenizer = Tokenizer().build_vocab([p.prompt + p.chosen + p.rejected for p in PAIRS])
    policy = tiny_model(tokenizer.vocab_size, seed=0)
    reference = tiny_model(tokenizer.vocab_size, seed=0).requires_grad_(False)
    return tokenizer, policy, reference


def test_loss_is_log2_at_initialisation(setup):
    tokenizer, policy, reference = setup
    batch = pair_batch(PAIRS, tokenizer, reference)
    loss, n = DPOObjective(beta=0.1)(policy, batch)
    assert n == len(PAIRS)
    assert float(loss.detach()) == pytest.approx(math.log(2), abs=1e-5)
    held = evaluate_preferences(policy, reference, PAIRS, tokenizer, 0.1)
    assert held["pref_acc"] == 0.5  # 全部打平：瞎猜
    assert held["chosen_shift"] == pytest.approx(0, abs=1e-5) and held["rejected_shift"] == pytest.approx(0, abs=1e-5)


def test_sft_term_is_the_mean_token_loss_on_the_chosen_replies(setup):
    """sft_weight 加上的正是 chosen 回答的 SFT 损失：与 lm_loss 对每条 chosen 单独算的每词元平均损失一致。"""
    tokenizer, policy, reference = setup
    batch = pair_batch(PAIRS, tokenizer, reference)
    n = len(PAIRS)
    logps = sequence_logprobs(policy, batch["input_ids"], batch["labels"])
    per_reply = [float(lm_loss(policy, {"input_ids": batch["input_ids"][i:i + 1], "labels": batch["labels"][i:i + 1]})[0])
                 for i in range(n)]
    nll = chosen_nll(logps[:n], batch["labels"][:n])
    assert float(nll) == pytest.approx(sum(per_reply) / n, rel=1e-5)
    pure, _ = DPOObjective(beta=0.1)(policy, batch)
    mixed, _ = DPOObjective(beta=0.1, sft_weight=0.5)(policy, batch)
    assert float(mixed) == pytest.approx(float(pure) + 0.5 * float(nll), rel=1e-5)
    with pytest.raises(StudyGPTError, match="sft_weight"):
        DPOObjective(beta=0.1, sft_weight=-1)


def test_one_gradient_step_raises_chosen_relative_to_rejected(setup):
    tokenizer, policy, reference = setup
    batch = pair_batch(PAIRS, tokenizer, reference)

    def gap():
        with torch.no_grad():
            logps = sequence_logprobs(policy, batch["input_ids"], batch["labels"])
        return logps[:3] - logps[3:]                       # log π(chosen) − log π(rejected)，每条一个

    before = gap()
    loss, _ = DPOObjective(beta=0.1)(policy, batch)
    loss.backward()
    with torch.no_grad():
        for p in policy.parameters():
            p -= 0.05 * p.grad                              # 一步普通的梯度下降
    assert (gap() > before).all()
    assert float(DPOObjective(beta=0.1)(policy, batch)[0].detach()) < math.log(2)


def test_sequence_logprob_counts_only_the_reply(setup):
    tokenizer, policy, _ = setup
    batch = pair_batch(PAIRS[:1], tokenizer, policy)
    ids, labels = batch["input_ids"], batch["labels"]
    changed = ids.clone()
    changed[:, 2] = (changed[:, 2] + 1) % tokenizer.vocab_size   # 改提示里的一个字（不在回答里）
    full = sequence_logprobs(policy, ids, labels)
    n_reply = int((labels[:, 1:] != -100).sum(-1)[0])
    assert n_reply == len("12加34等于46。") + 1                   # 回答的每个字 + 结尾的 <|end|>
    assert not torch.allclose(full, sequence_logprobs(policy, changed, labels))  # 提示会影响回答的概率
    with torch.no_grad():
        assert float(full[0]) < 0


def test_dpo_loss_and_accuracy_by_hand():
    zeros = torch.zeros(2)
    loss, margin = dpo_loss(torch.tensor([-1.0, -5.0]), torch.tensor([-3.0, -4.0]), zeros, zeros, beta=0.5)
    assert torch.allclose(margin, torch.tensor([1.0, -0.5]))
    assert float(loss) == pytest.approx(float(-(torch.nn.functional.logsigmoid(margin)).mean()))
    assert preference_accuracy(margin) == 0.5 and preference_accuracy(torch.tensor([1.0, 0.0])) == 0.75


def test_builtin_pairs_prefer_the_exact_answer():
    task = get_task("add3")
    pairs = builtin_pairs(task.train_problems(30, seed=0))
    problems = task.train_problems(30, seed=0)
    for p, pair in zip(problems, pairs):
        assert pair.prompt == p.question and pair.chosen == p.answer
        assert reward(p, pair.chosen) == 1.0 and reward(p, pair.rejected) == 0.0


def test_pair_batches_are_reproducible_and_resumable(setup):
    tokenizer, _, reference = setup
    loader = PairBatches(PAIRS * 4, tokenizer, reference, batch_size=4, seed=1)
    assert len(loader) == 3
    all_batches = list(loader)
    tail = list(loader.iter_from(1))
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(all_batches[1:], tail))


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "a", "chosen": "b"}', 'rejected'),
    ('{"prompt": "a", "chosen": "", "rejected": "c"}', 'chosen'),
    ('{"prompt": "  ", "chosen": "b", "rejected": "c"}', 'prompt'),
    ('{"prompt": "a", "chosen": 3, "rejected": "c"}', 'chosen'),
    ('{"prompt": "a", "chosen": "b", "rejected": "b"}', '相同'),
    ('["a", "b", "c"]', 'JSON 对象'),
    ('{"prompt": "a", ', 'JSON'),
])
def test_bad_pairs_file_names_the_line(tmp_path, line, message):
    path = tmp_path / "prefs.jsonl"
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"}, ensure_ascii=False)
    path.write_text(good + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(StudyGPTError, match=f"第 3 行.*{message}"):
        read_pairs(path)


def test_cli_bad_pairs_is_one_line_and_nonzero(tmp_path, setup, capsys):
    tokenizer, policy, _ = setup
    save_checkpoint(tmp_path / "run", policy, tokenizer)
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"prompt": "a", "chosen": "b"}\n', encoding="utf-8")
    assert main(["dpo", str(tmp_path / "run"), "--pairs", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "第 1 行" in err and "Traceback" not in err
    assert read_pairs_ok(tmp_path)


def read_pairs_ok(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"prompt": "a", "chosen": "b", "rejected": "c"}) + "\n", encoding="utf-8")
    return read_pairs(path) == [Pair("a", "b", "c")]
