"""练习的失败信息说的是学习者的话：一个错的答案得到"位置 1 的标签应为 -100（这是用户的字…）"这样的句子。

做法：导入真正的练习测试 (docs/exercises/test_chNN.py)，把其中的 `ex` 换成一个故意写错的答案，运行测试函数，
看它抛出的 AssertionError 说了什么。
"""
import importlib
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

EXERCISES = Path(__file__).resolve().parents[1] / "docs" / "exercises"


@pytest.fixture
def exercise_test(monkeypatch):
    """import_test("test_ch03") → 那个测试模块（用参考答案导入，之后由测试换成错的答案）。"""
    monkeypatch.syspath_prepend(str(EXERCISES))
    monkeypatch.setenv("STUDYGPT_SOLUTIONS", "1")
    return importlib.import_module


def failure_message(test_function) -> str:
    """测试失败时学习者看到的第一行（pytest 在它后面再附上断言的表达式）。"""
    with pytest.raises(AssertionError) as info:
        test_function()
    return str(info.value).splitlines()[0]


def test_wrong_label_gets_position_and_reason(exercise_test, monkeypatch):
    module = exercise_test("test_ch03")
    right = exercise_test("solutions.ch03_mask")

    def learns_user_text_too(turns, tok):  # 常见错误：用户的字也学了
        ids, labels = right.render(turns, tok)
        return ids, [i if lab == -100 and tok.id_to_token[i] not in ("<|user|>", "<|assistant|>", "<|end|>") else lab
                     for i, lab in zip(ids, labels)]

    monkeypatch.setattr(module, "ex", SimpleNamespace(render=learns_user_text_too))
    message = failure_message(module.test_render_matches_studygpt)
    assert message.startswith('位置 1 的标签应为 -100（这是用户的字"你"，不学），你的是 ')


def test_wrong_shift_names_the_position(exercise_test, monkeypatch):
    module = exercise_test("test_ch03")
    no_shift = lambda ids, labels: [(i, lab) for i, lab in zip(ids, labels) if lab != -100]  # noqa: E731  忘了错开一位
    monkeypatch.setattr(module, "ex", SimpleNamespace(training_pairs=no_shift))
    message = failure_message(module.test_training_pairs_shift_by_one)
    assert message.startswith("位置 0 的(输入, 要预测的) 编号对（要预测的是下一个位置的标签 labels[t+1]）应为 ")


def test_wrong_top_p_names_the_setting_and_the_token(exercise_test, monkeypatch):
    module = exercise_test("test_ch08")

    def drops_the_crossing_token(logits, p):  # 常见错误：把让累计概率越过 p 的那个词元也去掉了
        sorted_logits, order = torch.sort(logits, descending=True)
        drop_sorted = sorted_logits.softmax(-1).cumsum(-1) >= p
        return logits.masked_fill(torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted), float("-inf"))

    monkeypatch.setattr(module, "ex", SimpleNamespace(top_p_filter=drops_the_crossing_token))
    message = failure_message(module.test_top_p_matches_studygpt)
    assert message == "top_p=0.3 时：编号 0（原始 logit 3.2）应该保留（值 3.200），你的答案把它去掉了（-inf）"


def test_wrong_temperature_says_what_temperature_does(exercise_test, monkeypatch):
    module = exercise_test("test_ch08")
    monkeypatch.setattr(module, "ex", SimpleNamespace(apply_temperature=lambda logits, t: logits * t))
    message = failure_message(module.test_temperature_matches_studygpt)
    assert message.startswith("temperature=0.5 时：编号 0（原始 logit 3.2）处理后应为 6.4000，你的是 1.6000")
    assert message.endswith("（温度：logits 除以 T）")


# ===== 第 4–7 章：常见错误各有一个故意写错的答案，失败信息要说出错处和"看起来……"的诊断 =====
def message_for(exercise_test, monkeypatch, chapter: str, test: str, **wrong) -> str:
    """把 test_chNN 里的 ex 换成 SimpleNamespace(**wrong)，运行那个测试函数，返回失败信息的第一行。"""
    module = exercise_test(f"test_{chapter}")
    monkeypatch.setattr(module, "ex", SimpleNamespace(**wrong))
    torch.manual_seed(0)  # 测试里的随机输入每次一样，诊断也就每次一样
    return failure_message(getattr(module, test))


def rope(head_size, max_len, base=10000.0, exponent=lambda i, hs: -2 * i / hs):
    inv_freq = base ** exponent(torch.arange(head_size // 2), head_size)
    angles = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq
    return angles.cos(), angles.sin()


def rotate(x, cos, sin, sign=1):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - sign * x2 * sin, sign * x1 * sin + x2 * cos], dim=-1)


def rotate_adjacent(x, cos, sin):  # 相邻两维配对的写法（不是 StudyGPT 的 rotate-half）
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


@pytest.mark.parametrize("test, wrong, words", [
    ("test_angles_match_studygpt", dict(rope_angles=lambda hs, T: tuple(torch.cat([t, t], -1) for t in rope(hs, T))),
     ["cos 表的形状应为 (32, 8)", "rotate-half"]),
    ("test_angles_match_studygpt", dict(rope_angles=lambda hs, T: rope(hs, T, exponent=lambda i, hs: -i / hs)),
     ["cos 表在位置 t=1、第 i=1 对应为 cos(1 · 10000^(−2·1/16)) = ", "指数少了 2"]),
    ("test_angles_match_studygpt", dict(rope_angles=lambda hs, T: rope(hs, T, exponent=lambda i, hs: 2 * i / hs)),
     ["指数少了负号"]),
    ("test_angles_match_studygpt", dict(rope_angles=lambda hs, T: rope(hs, T)[::-1]),
     ["cos 表在位置 t=0、第 i=0 对应为 cos(0 · 10000^(−2·0/16)) = 1.0000，你的是 0.0000", "cos 和 sin 弄反了"]),
    ("test_rotation_matches_studygpt_and_keeps_the_length", dict(rotate=lambda x, c, s: rotate(x, c, s, sign=-1)),
     ["样本 0、头 0、位置 t=1、第 0 维旋转后应为", "转反了方向"]),
    ("test_rotation_matches_studygpt_and_keeps_the_length", dict(rotate=rotate_adjacent), ["相邻两维", "rotate-half"]),
    ("test_rotation_matches_studygpt_and_keeps_the_length", dict(rotate=lambda x, c, s: 2 * rotate(x, c, s)),
     ["长度 (norm) 变了"]),
    ("test_score_depends_only_on_the_distance", dict(rotate=lambda x, c, s: x * torch.cat([c, c], -1)),
     ["相距 3 的分数 q·k 应该都一样", "你的从 (位置 "]),
])
def test_chapter4_messages(exercise_test, monkeypatch, test, wrong, words):
    message = message_for(exercise_test, monkeypatch, "ch04", test, **wrong)
    assert all(w in message for w in words), message


def attention(q, k, v, scale=None, causal=True, dim=-1, fill=float("-inf")):
    scores = q @ k.transpose(-2, -1) * (q.shape[-1] ** -0.5 if scale is None else scale)
    if causal:
        scores = scores.masked_fill(~torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool).tril(), fill)
    return scores.softmax(dim=dim) @ v


@pytest.mark.parametrize("test, wrong, words", [
    ("test_causal_mask_is_lower_triangular", dict(causal_mask=lambda T: torch.ones(T, T).triu().bool()),
     ["位置 0 不能看位置 1（只能看 j ≤ i，1 是它的未来），你的答案让它看了", "上三角"]),
    ("test_causal_mask_is_lower_triangular", dict(causal_mask=lambda T: torch.ones(T, T).tril(-1).bool()),
     ["位置 0 能看位置 0", "漏了对角线"]),
    ("test_causal_mask_is_lower_triangular", dict(causal_mask=lambda T: ~torch.ones(T, T).tril().bool()),
     ["你把 True 和 False 弄反了"]),
    ("test_causal_mask_is_lower_triangular", dict(causal_mask=lambda T: torch.ones(T, T).tril().bool().fill_diagonal_(0)
                                                  | torch.eye(T, dtype=torch.bool).roll(1, 0)),
     ["位置 0 能看位置 0"]),
    ("test_attention_equals_pytorch_sdpa", dict(attention=lambda q, k, v: attention(q, k, v, scale=1.0)),
     ["样本 0、头 0、位置 1 的输出应为 [", "忘了除以 √hs"]),
    ("test_attention_equals_pytorch_sdpa", dict(attention=lambda q, k, v: attention(q, k, v, causal=False)),
     ["样本 0、头 0、位置 0 的输出应为 [", "忘了因果掩码"]),
    ("test_attention_equals_pytorch_sdpa", dict(attention=lambda q, k, v: attention(q, k, v, 1.0, causal=False)),
     ["忘了除以 √hs，也忘了因果掩码"]),
    ("test_attention_equals_pytorch_sdpa", dict(attention=lambda q, k, v: attention(q, k, v, dim=-2)), ["dim=-2"]),
    ("test_attention_equals_pytorch_sdpa", dict(attention=lambda q, k, v: attention(q, k, v, dim=1)), ["nh 个头之间"]),
    ("test_attention_equals_pytorch_sdpa", dict(attention=lambda q, k, v: attention(q, k, v)[:, 0]),
     ["输出 (B, nh, T, hs) 的形状应为 (2, 3, 5, 8)，你的是 (2, 5, 8)"]),
    ("test_attention_equals_pytorch_sdpa", dict(attention=lambda q, k, v: attention(q, k, v, dim=0)),
     ["B 个样本之间"]),
    ("test_attention_equals_pytorch_sdpa", dict(attention=lambda q, k, v: attention(q, k, v, fill=0.0)),
     ["掩码位置填了 0"]),
    ("test_attention_does_not_leak_future_or_other_samples",
     dict(attention=lambda q, k, v: attention(q, k, v, causal=False)), ["样本 0 头 0 位置 0 的输出变了", "看到了未来"]),
    ("test_attention_does_not_leak_future_or_other_samples",  # 把整批的 k 加在一起：样本之间串了
     dict(attention=lambda q, k, v: attention(q, k.sum(0, keepdim=True), v)), ["看到了样本 1"]),
])
def test_chapter5_messages(exercise_test, monkeypatch, test, wrong, words):
    message = message_for(exercise_test, monkeypatch, "ch05", test, **wrong)
    assert all(w in message for w in words), message


def rms(x, weight, eps, reduce=torch.mean, root=torch.rsqrt):
    return x * root(reduce(x.pow(2), dim=-1, keepdim=True) + eps) * weight


def swiglu(x, w1, w3, w2, gate=F.silu):
    return (gate(x @ w1.T) * (x @ w3.T)) @ w2.T


@pytest.mark.parametrize("test, wrong, words", [
    ("test_rms_norm_matches_studygpt", dict(rms_norm=lambda x, w, eps: F.layer_norm(x, x.shape[-1:], w, None, eps)),
     ["样本 0、位置 0、第 ", "LayerNorm"]),
    ("test_rms_norm_matches_studygpt", dict(rms_norm=lambda x, w, eps: rms(x, 1.0, eps)), ["忘了逐维乘以 weight"]),
    ("test_rms_norm_matches_studygpt", dict(rms_norm=lambda x, w, eps: rms(x, w, eps, reduce=torch.sum)), ["平方和"]),
    ("test_rms_norm_matches_studygpt", dict(rms_norm=lambda x, w, eps: rms(x, w, eps, root=torch.reciprocal)),
     ["忘了开方"]),
    ("test_rms_norm_matches_studygpt", dict(rms_norm=lambda x, w, eps: rms(x, w, 0.0)), ["忘了加 eps"]),
    ("test_swiglu_matches_studygpt_mlp", dict(swiglu=lambda x, w1, w3, w2: swiglu(x, w3, w1, w2)), ["w1 和 w3 弄反了"]),
    ("test_swiglu_matches_studygpt_mlp", dict(swiglu=lambda x, w1, w3, w2: swiglu(x, w1, w3, w2, F.relu)), ["ReLU"]),
    ("test_swiglu_matches_studygpt_mlp", dict(swiglu=lambda x, w1, w3, w2: swiglu(x, w1, w3, w2, F.gelu)), ["GELU"]),
    ("test_swiglu_matches_studygpt_mlp", dict(swiglu=lambda x, w1, w3, w2: swiglu(x, w1, w3, w2, torch.sigmoid)),
     ["门用了 sigmoid"]),
    ("test_swiglu_matches_studygpt_mlp", dict(swiglu=lambda x, w1, w3, w2: F.silu(x @ w1.T) @ w2.T), ["忘了乘上投影"]),
    ("test_two_pre_norm_residuals_make_a_block", dict(pre_norm_residual=lambda x, norm, sub: norm(x + sub(x))),
     ["后置归一化 (post-norm)"]),
    ("test_two_pre_norm_residuals_make_a_block", dict(pre_norm_residual=lambda x, norm, sub: norm(x) + sub(norm(x))),
     ["残差加的是归一化后的 x"]),
    ("test_two_pre_norm_residuals_make_a_block", dict(pre_norm_residual=lambda x, norm, sub: sub(norm(x))),
     ["忘了残差"]),
    ("test_two_pre_norm_residuals_make_a_block", dict(pre_norm_residual=lambda x, norm, sub: x + sub(x)),
     ["忘了先归一化"]),
    ("test_rms_norm_matches_studygpt", dict(rms_norm=lambda x, w, eps: rms(x.double(), w.double(), eps)),
     ["RMSNorm 输出的数据类型 (dtype) 应为 torch.float32，你的是 torch.float64"]),
])
def test_chapter6_messages(exercise_test, monkeypatch, test, wrong, words):
    message = message_for(exercise_test, monkeypatch, "ch06", test, **wrong)
    assert all(w in message for w in words), message


def cosine(progress, lr, warmup, min_ratio, floor=None, t=None, warm=True):
    if warm and progress < warmup:
        return lr * progress / warmup
    t = (progress - warmup) / (1 - warmup) if t is None else t
    floor = min_ratio * lr if floor is None else floor
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * t))


def clip_each(grads, max_norm):  # 每个张量各自裁剪：不是总范数
    return [g * min(1.0, max_norm / float(g.norm())) for g in grads]


def scale_always(grads, max_norm):  # 没超过也缩放
    total = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    return [g * max_norm / total for g in grads]


@pytest.mark.parametrize("test, wrong, words", [
    ("test_warmup_cosine_matches_studygpt", dict(warmup_cosine=lambda p, lr, w, m: cosine(p, lr, w, m, floor=0.0)),
     ["进度 progress=0.3 时学习率应为 0.00089472", "余弦下降阶段", "忘了下限"]),
    ("test_warmup_cosine_matches_studygpt", dict(warmup_cosine=lambda p, lr, w, m: cosine(p, lr, w, m, floor=m)),
     ["不是 min_ratio 本身"]),
    ("test_warmup_cosine_matches_studygpt", dict(warmup_cosine=lambda p, lr, w, m: cosine(p, lr, w, m, t=p)),
     ["进度 progress=0.1 时", "t 要从预热结束时算起"]),
    ("test_warmup_cosine_matches_studygpt", dict(warmup_cosine=lambda p, lr, w, m: cosine(p, lr, w, m, warm=False)),
     ["进度 progress=0.05 时", "预热阶段 (warm-up)", "没有预热"]),
    ("test_warmup_cosine_matches_studygpt",
     dict(warmup_cosine=lambda p, lr, w, m: lr * p if p < w else cosine(p, lr, w, m)),
     ["忘了除以 warmup"]),
    ("test_clip_by_global_norm_matches_torch", dict(clip_by_global_norm=clip_each),
     ["第 0 个梯度在位置 (0, 0) 应为", "所有梯度都乘以同一个比例", "分别裁剪"]),
    ("test_clip_by_global_norm_matches_torch", dict(clip_by_global_norm=lambda grads, m: list(grads)), ["没有裁剪"]),
    ("test_clip_by_global_norm_matches_torch", dict(clip_by_global_norm=scale_always),
     ["总长度 0.141 没超过 max_norm=1.0，应原样返回（不变）"]),
    ("test_weighted_micro_batches_give_the_full_batch_gradient", dict(accumulation_weights=lambda c: [0.5, 0.5]),
     ["权重应为 count_i / sum(counts) = [", "每个小批次都乘 1/2"]),
    ("test_weighted_micro_batches_give_the_full_batch_gradient", dict(accumulation_weights=lambda c: list(c)),
     ["忘了除以总数"]),
])
def test_chapter7_messages(exercise_test, monkeypatch, test, wrong, words):
    message = message_for(exercise_test, monkeypatch, "ch07", test, **wrong)
    assert all(w in message for w in words), message


# ===== 第 15 章：组相对优势用了 torch 默认的样本标准差 =====
def sample_std_advantages(rewards, group_size, eps=1e-4):  # 常见错误：torch 的 std 默认除以 G−1 (unbiased=True)
    groups = rewards.view(-1, group_size)
    return ((groups - groups.mean(dim=1, keepdim=True)) / (groups.std(dim=1, keepdim=True) + eps)).view(-1)


def test_sample_std_in_group_advantages_gets_the_unbiased_false_hint(exercise_test, monkeypatch):
    message = message_for(exercise_test, monkeypatch, "ch15", "test_group_advantages_match_studygpt",
                          group_advantages=sample_std_advantages)
    assert message.startswith("看起来你用了样本标准差") and "std(..., unbiased=False)" in message, message
    assert "应为 [1.7317, -0.5772, -0.5772, -0.5772" in message and "你的是 [1.4997, -0.4999" in message, message
