"""第 7 章练习的测试：pytest docs/exercises -k ch07"""
import torch
from exercise_loader import load
from explain import explain_accumulation, explain_clip, explain_lr

from studygpt.model.transformer import DialogueModel, lm_loss
from studygpt.training.optim import TrainConfig, WarmupCosine

ex = load("ch07_training")


def test_warmup_cosine_matches_studygpt():
    config = TrainConfig(lr=1e-3, warmup_ratio=0.1, min_lr_ratio=0.1)
    schedule = WarmupCosine(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), config)
    for progress in [0.05, 0.1, 0.3, 0.55, 0.9, 1.0]:
        msg = explain_lr(ex.warmup_cosine(progress, 1e-3, 0.1, 0.1), schedule.lr_at(progress), progress, 1e-3, 0.1, 0.1)
        assert msg is None, msg


def test_clip_by_global_norm_matches_torch():
    grads = [torch.randn(3, 4) * 5, torch.randn(7) * 5]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    expected = [p.grad for p in params]
    msg = explain_clip(ex.clip_by_global_norm(grads, 1.0), expected, grads, 1.0, rtol=1e-4, atol=1e-6)
    assert msg is None, msg
    small = [torch.full((2,), 0.1)]
    mine = ex.clip_by_global_norm(small, 1.0)[0]
    assert (msg := explain_clip([mine], small, small, 1.0)) is None, msg  # 没超过：不变


def test_weighted_micro_batches_give_the_full_batch_gradient():
    torch.manual_seed(0)
    model = DialogueModel(vocab_size=30, d_model=16, n_head=2, n_layers=1, max_len=12)
    ids = torch.randint(0, 30, (4, 12))
    labels = ids.clone()
    labels[0, :9] = -100  # 第一个小批次被学习的词元少
    micro = [{"input_ids": ids[i:i + 2], "labels": labels[i:i + 2]} for i in (0, 2)]
    counts = [int((b["labels"][:, 1:] != -100).sum()) for b in micro]
    weights = ex.accumulation_weights(counts)
    for b, w in zip(micro, weights):
        (lm_loss(model, b)[0] * w).backward()
    accumulated = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    lm_loss(model, {"input_ids": ids, "labels": labels})[0].backward()
    full = [p.grad for p in model.parameters()]
    assert (msg := explain_accumulation(weights, counts, accumulated, full, rtol=1e-4, atol=1e-6)) is None, msg
