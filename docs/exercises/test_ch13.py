"""第 13 章练习的测试：pytest docs/exercises -k ch13。参照是 studygpt/model/lora.py 的 LoRALinear。"""
import torch
from exercise_loader import load

from studygpt.model.lora import LoRAConfig, LoRALinear, trainable_share

ex = load("ch13_lora")


def adapted_layer(d_in=12, d_out=20, rank=4, alpha=8.0) -> LoRALinear:
    torch.manual_seed(0)
    layer = LoRALinear(torch.nn.Linear(d_in, d_out, bias=False), LoRAConfig(rank=rank, alpha=alpha))
    with torch.no_grad():
        layer.lora_B.normal_()  # 训练过的样子：B 不再是 0
    return layer


def test_lora_forward_matches_studygpt():
    layer = adapted_layer()
    x = torch.randn(2, 5, 12)
    mine = ex.lora_forward(x, layer.weight, layer.lora_A, layer.lora_B, 8.0)
    assert mine.shape == (2, 5, 20), f"形状应为 (2, 5, 20)，你的是 {tuple(mine.shape)}"
    assert torch.allclose(mine, layer(x), atol=1e-5), "与 LoRALinear.forward 不同：别忘了缩放 alpha / r"
    layer_b0 = LoRALinear(torch.nn.Linear(12, 20, bias=False), LoRAConfig(rank=4, alpha=8.0))
    assert torch.equal(ex.lora_forward(x, layer_b0.weight, layer_b0.lora_A, layer_b0.lora_B, 8.0),
                       x @ layer_b0.weight.T), "B = 0 时应与底座完全相同"


def test_merged_weight_gives_the_same_outputs():
    layer = adapted_layer()
    merged = ex.merge_weight(layer.weight, layer.lora_A, layer.lora_B, 8.0)
    assert merged.shape == layer.weight.shape
    assert torch.allclose(merged, layer.merged_weight(), atol=1e-6)
    x = torch.randn(3, 12)
    assert torch.allclose(x @ merged.T, layer(x), atol=1e-5)


def test_lora_param_count_matches_studygpt():
    for d_in, d_out, rank in ((12, 20, 4), (128, 384, 8), (512, 1536, 16)):
        layer = LoRALinear(torch.nn.Linear(d_in, d_out, bias=False), LoRAConfig(rank=rank))
        trainable, _ = trainable_share(layer)
        count, share = ex.lora_param_count(d_in, d_out, rank)
        assert count == trainable, f"{d_out}×{d_in}、r={rank}：可训练参数应为 {trainable}，你的是 {count}"
        assert abs(share - trainable / (d_in * d_out)) < 1e-12
