"""第 6 章练习的测试：pytest docs/exercises -k ch06。参照答案是 studygpt/model/transformer.py 里的真实模块。"""
import torch
from exercise_loader import load
from explain import explain_block, explain_rms_norm, explain_swiglu

from studygpt.model.transformer import Block, ModelConfig, RMSNorm, causal_mask, rope_tables

ex = load("ch06_block")
CFG = ModelConfig(vocab_size=10, d_model=16, n_head=2, n_layers=1, max_len=8)


def test_rms_norm_matches_studygpt():
    norm = RMSNorm(16, 1e-5)
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(2, 5, 16)
    assert (msg := explain_rms_norm(ex.rms_norm(x, norm.weight, 1e-5), x, norm.weight, 1e-5, norm(x))) is None, msg


def test_swiglu_matches_studygpt_mlp():
    mlp = Block(CFG).feed_forward
    w1, w3 = mlp.w13.weight.split(CFG.ffn_hidden)  # 融合的 w13 里前一半是 w1、后一半是 w3
    x = torch.randn(2, 5, 16)
    assert (msg := explain_swiglu(ex.swiglu(x, w1, w3, mlp.w2.weight), x, w1, w3, mlp.w2.weight, mlp(x))) is None, msg


def test_two_pre_norm_residuals_make_a_block():
    block = Block(CFG)
    cos, sin = (t[None, None, :5] for t in rope_tables(CFG.head_size, 8, CFG.rope_base))
    mask = causal_mask(5, "cpu")
    x = torch.randn(1, 5, 16)
    attention = lambda y: block.attention(y, cos, sin, mask)  # noqa: E731
    layers = [(block.attention_norm, attention), (block.ffn_norm, block.feed_forward)]  # 依次的 (归一化, 子层)
    h = ex.pre_norm_residual(x, *layers[0])
    out = ex.pre_norm_residual(h, *layers[1])
    assert (msg := explain_block(out, block(x, cos, sin, mask), x, layers)) is None, msg
