"""推理加载 (generation/inference.py)：列优先存放只改内存顺序，不改数值与输出；编译时换回行优先。"""
import torch

from studygpt.generation.inference import column_major_weights, load_for_inference
from studygpt.model.checkpoint import save_checkpoint
from tests.conftest import tiny_model


def test_column_major_weights_keep_values_and_outputs():
    model = tiny_model(50).eval()
    x = torch.randint(0, 50, (2, 9))
    before = model(x)
    values = [p.detach().clone() for p in model.parameters()]
    column_major_weights(model)
    for p, v in zip(model.parameters(), values):
        assert torch.equal(p, v)
        assert p.dim() != 2 or p.stride() == (1, p.shape[0])  # (out, in) 的形状，按 (in, out) 存
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)


def test_load_for_inference_gives_an_eval_model_laid_out_for_decoding(tokenizer, tmp_path):
    model = tiny_model(tokenizer.vocab_size)
    run = save_checkpoint(tmp_path / "run", model, tokenizer)
    loaded, tok = load_for_inference(str(run), "cpu")
    assert not loaded.training and tok.vocab_hash() == tokenizer.vocab_hash()
    assert not loaded.layers[0].attention.wqkv.weight.is_contiguous()
    for a, b in zip(loaded.parameters(), model.parameters()):
        assert torch.equal(a, b)
