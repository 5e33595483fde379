"""第 10 章练习的测试：pytest docs/exercises -k ch10"""
import pytest
import torch
from exercise_loader import load

from studygpt.model.transformer import DialogueModel, lm_loss

ex = load("ch10_ddp")


def test_rows_for_rank_split_the_batch_evenly():
    assert [ex.rows_for_rank(8, r, 4) for r in range(4)] == [range(0, 2), range(2, 4), range(4, 6), range(6, 8)]
    with pytest.raises(ValueError):
        ex.rows_for_rank(6, 0, 4)


def test_all_reduce_mean():
    grads = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])]
    torch.testing.assert_close(ex.all_reduce_mean(grads), torch.tensor([2.0, 4.0]))


def test_two_ranks_with_token_weights_equal_the_full_batch():
    torch.manual_seed(0)
    model = DialogueModel(vocab_size=30, d_model=16, n_head=2, n_layers=1, max_len=12)
    ids = torch.randint(0, 30, (4, 12))
    labels = ids.clone()
    labels[:2, :8] = -100  # 进程 0 的行被学习的词元少：简单平均会偏
    batch = {"input_ids": ids, "labels": labels}
    shards = [{k: v[list(ex.rows_for_rank(4, r, 2))] for k, v in batch.items()} for r in range(2)]
    counts = [int((s["labels"][:, 1:] != -100).sum()) for s in shards]
    grads = []
    for shard, n in zip(shards, counts):
        model.zero_grad()
        (lm_loss(model, shard)[0] * ex.loss_scale(n, sum(counts), 2)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    model.zero_grad()
    lm_loss(model, batch)[0].backward()
    full = torch.cat([p.grad.flatten() for p in model.parameters()])
    torch.testing.assert_close(ex.all_reduce_mean(grads), full, rtol=1e-4, atol=1e-6)
