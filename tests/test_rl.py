"""强化学习 (posttrain/rl.py) 与可验证任务 (posttrain/tasks.py) 的测试：奖励精确、优势每组平均为 0、KL 在策略 = 参考时为 0、
裁剪起作用、抽样可复现、续训与一口气训完相同、坏输入一句话报错。"""
import dataclasses

import pytest
import torch

from studygpt.cli.parser import main
from studygpt.errors import StudyGPTError
from studygpt.posttrain.rl import (
    GRPOObjective,
    RLConfig,
    RolloutBatches,
    clipped_objective,
    group_advantages,
    kl_k3,
    rollout_batch,
)
from studygpt.posttrain.tasks import (
    TASKS,
    Problem,
    Task,
    get_task,
    is_heldout,
    parse_answer,
    reward,
)
from studygpt.tokenizer.char import Tokenizer
from studygpt.training.trainer import TransformerTrainer
from tests.conftest import tiny_model


# ===== 任务与奖励 =====
@pytest.mark.parametrize("reply, expected", [
    ("345加678等于1023。", 1.0),
    ("  345加678等于1023。\n", 1.0),       # 首尾空白不算错
    ("345加678等于1022。", 0.0),           # 算错
    ("345加687等于1023。", 0.0),           # 抄错了题
    ("345加678等于1023", 0.0),             # 没写完（缺句号）
    ("345加678等于", 0.0),                 # 截断
    ("345加678等于1023。345加678等于1023。", 0.0),  # 停不下来
    ("", 0.0), ("不知道", 0.0), ("等于等于。", 0.0), ("345减678等于1023。", 0.0),
    ("３４５加６７８等于１０２３。", 0.0),   # 全角数字不是约定的格式
])
def test_reward_is_exact_on_hand_made_cases(reply, expected):
    assert reward(Problem(345, 678), reply) == expected


def test_reward_for_subtraction_and_parser_never_raises():
    assert reward(Problem(52, 17, "减"), "52减17等于35。") == 1.0
    assert reward(Problem(52, 17, "减"), "52减17等于36。") == 0.0
    for junk in ["<unk>", "1" * 500, "加减等于。", "12加等于3。", "\x00", "。。。"]:
        assert parse_answer(junk) is None


def test_heldout_problems_are_fixed_and_never_drawn_for_training():
    for task in TASKS.values():
        held = task.heldout_problems(50)
        assert held == task.heldout_problems(50) and len(set(held)) == 50
        assert all(is_heldout(p.a, p.b, p.op) for p in held)
        train = task.train_problems(2000, seed=1)
        assert not any(is_heldout(p.a, p.b, p.op) for p in train)
        assert {(p.a, p.b) for p in train}.isdisjoint({(p.a, p.b) for p in held})
        assert all(p.result >= 0 for p in train)
    assert is_heldout(123, 456) == is_heldout(456, 123)  # 交换律：两种顺序同进同出


def test_unknown_task_is_one_clear_sentence(tmp_path, capsys):
    with pytest.raises(StudyGPTError, match="未知的任务.*add3"):
        get_task("add9")
    assert main(["rl", str(tmp_path / "nothing"), "--task", "add9", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add9" in err and "Traceback" not in err


# ===== GRPO 的各部分 =====
def test_advantages_are_zero_mean_per_group_and_zero_when_all_equal():
    rewards = torch.tensor([1., 0., 0., 1., 1., 1., 1., 1., 0., 0., 0., 1.])
    adv = group_advantages(rewards, group_size=4)
    groups = adv.view(3, 4)
    assert torch.allclose(groups.mean(dim=1), torch.zeros(3), atol=1e-6)
    assert torch.equal(groups[1], torch.zeros(4))           # 全组都对：这道题不教任何东西
    assert (adv[rewards == 1][:2] > 0).all() and (adv[rewards == 0][:2] < 0).all()
    assert torch.allclose(groups[0].std(unbiased=False), torch.tensor(1.0), atol=1e-3)  # 除以组内标准差


def test_kl_is_zero_when_policy_equals_reference_and_positive_otherwise():
    logp = torch.log(torch.tensor([0.1, 0.5, 0.9]))
    assert torch.equal(kl_k3(logp, logp), torch.zeros(3))
    assert (kl_k3(logp, logp - 0.3) > 0).all() and (kl_k3(logp, logp + 0.3) > 0).all()


def test_clipped_objective_stops_rewarding_beyond_the_clip():
    old = torch.zeros(3)
    logp = torch.log(torch.tensor([1.0, 1.5, 0.5]))          # 比率 ρ = 1, 1.5, 0.5
    pos = clipped_objective(logp, old, torch.ones(3), clip=0.2)
    assert torch.allclose(pos, torch.tensor([1.0, 1.2, 0.5]))  # A > 0：ρ 超过 1.2 不再多给
    neg = clipped_objective(logp, old, -torch.ones(3), clip=0.2)
    assert torch.allclose(neg, torch.tensor([-1.0, -1.5, -0.8]))  # A < 0：ρ 低于 0.8 不再多罚


# ===== 抽样、目标函数、续训（极小的模型） =====
class LengthTask(Task):
    """测试用：奖励 = 回答的字数是不是偶数。随机初始化的模型也能拿到一半的分，于是优势不全为 0。"""

    def score(self, problem, reply):
        return float(len(reply) % 2 == 0)


TINY_TASK = LengthTask("tiny", "加", 1, 9, "test")


def tiny_setup(seed=0):
    tokenizer = Tokenizer().build_vocab(["0123456789加减等于多少？。"])
    model = tiny_model(tokenizer.vocab_size, seed=seed)
    return tokenizer, model


def config(**kw):
    return RLConfig(prompts_per_step=2, group_size=4, max_new_tokens=8, **kw)


def test_rollouts_depend_only_on_seed_and_step():
    tokenizer, model = tiny_setup()
    a, stats = rollout_batch(model, tokenizer, TINY_TASK, config(), step=3)
    b, _ = rollout_batch(model, tokenizer, TINY_TASK, config(), step=3)
    c, _ = rollout_batch(model, tokenizer, TINY_TASK, config(), step=4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["input_ids"], c["input_ids"]) if a["input_ids"].shape == c["input_ids"].shape else True
    assert a["input_ids"].shape[0] == 8 and a["old_logps"].shape == (8, a["input_ids"].shape[1] - 1)
    assert 0 <= stats["reward"] <= 1 and stats["length"] >= 1


def test_objective_at_start_has_zero_kl_and_old_logprobs_match_the_policy():
    tokenizer, model = tiny_setup()
    reference = tiny_setup()[1].requires_grad_(False)
    batch, _ = rollout_batch(model, tokenizer, TINY_TASK, config(), step=0)
    objective = GRPOObjective(reference, config())
    loss, n = objective(model, batch)
    assert n == objective.count(batch) > 0
    assert objective.last["kl"] == pytest.approx(0.0, abs=1e-6)  # 策略 = 参考：KL 为 0
    assert objective.last["clip_frac"] == 0.0                       # 抽样时的概率与重算的一致：ρ = 1
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def make_trainer(tmp_path, name, steps):
    tokenizer, model = tiny_setup()
    reference = tiny_setup()[1].requires_grad_(False)
    loader = RolloutBatches(model, tokenizer, TINY_TASK, config())
    return TransformerTrainer(model, loader, "cpu", {"lr": 1e-2, "max_steps": steps, "use_amp": False,
                                                     "check_memory": False, "weight_decay": 0.0},
                              tokenizer=tokenizer, out_dir=tmp_path / name, progress=False,
                              log=lambda s: None, objective=GRPOObjective(reference, config()))


def test_resume_continues_exactly_like_one_run(tmp_path):
    straight = make_trainer(tmp_path, "straight", 4)
    straight.train()
    first = make_trainer(tmp_path, "split", 4)
    first.train(until_step=2)                     # 停在第 2 步，存下 last/
    resumed = make_trainer(tmp_path, "split", 4).resume(tmp_path / "split" / "last")
    assert resumed.step == 2
    resumed.train()
    moved = False
    for a, b, start in zip(straight.model.parameters(), resumed.model.parameters(), tiny_setup()[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6)
        moved = moved or not torch.allclose(a, start)
    assert moved  # 确实训练了（不是两边都没动）


def test_rl_config_rejects_impossible_settings():
    with pytest.raises(StudyGPTError, match="group_size"):
        RLConfig(group_size=1)
    assert dataclasses.asdict(RLConfig()) == RLConfig().to_dict()
