"""LoRA：装上时与底座一模一样；只有适配器有梯度、进优化器；训练后底座权重一位不差；合并后与适配器模型等价；存取。"""
import json

import pytest
import torch

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import build_windows
from studygpt.errors import StudyGPTError
from studygpt.model.checkpoint import load_model
from studygpt.model.lora import (
    LoRAConfig,
    LoRALinear,
    add_lora,
    load_adapter,
    merge_lora,
    save_adapter,
    trainable_share,
)
from studygpt.model.transformer import lm_loss
from studygpt.training.trainer import TransformerTrainer
from tests.conftest import DIALOGUES, tiny_model

MERGE_TOLERANCE = 1e-5  # 合并只改变浮点求和的顺序：float32 下 logits 的差在 1e-6 量级


def base_and_adapted(tokenizer, rank=4):
    base = tiny_model(tokenizer.vocab_size)
    adapted = tiny_model(tokenizer.vocab_size)  # 同一个种子：与 base 相同的权重
    add_lora(adapted, LoRAConfig(rank=rank, alpha=2.0 * rank))
    return base, adapted


def batches(tokenizer):
    return PackedBatches(build_windows(DIALOGUES * 4, tokenizer, 64), 2, 64, tokenizer.token_id("<pad>"))


def test_at_init_the_adapter_model_equals_the_base_model_exactly(tokenizer):
    base, adapted = base_and_adapted(tokenizer)
    x = torch.randint(0, tokenizer.vocab_size, (2, 16))
    assert torch.equal(base(x), adapted(x))  # B = 0：支路正好是 0
    n_lora = sum(isinstance(m, LoRALinear) for m in adapted.modules())
    assert n_lora == 4 * adapted.config.n_layers  # 每层 wqkv、wo、w13、w2


def test_only_adapter_parameters_receive_gradients(tokenizer):
    _, adapted = base_and_adapted(tokenizer)
    batch = next(iter(batches(tokenizer)))
    loss, _ = lm_loss(adapted, batch)
    loss.backward()
    for name, p in adapted.named_parameters():
        if ".lora_" in name:
            assert p.requires_grad and p.grad is not None, name
        else:
            assert not p.requires_grad and p.grad is None, name
    # lora_B 从 0 开始，所以第一步只有 B 的梯度非零；A 的梯度要等 B 不为 0 以后才有
    assert any(p.grad.abs().sum() > 0 for n, p in adapted.named_parameters() if n.endswith("lora_B"))
    trainable, total = trainable_share(adapted)
    assert trainable == sum(p.numel() for n, p in adapted.named_parameters() if ".lora_" in n) and trainable < total / 5


def test_training_changes_only_the_adapters_and_merge_gives_the_same_logits(tokenizer, tmp_path):
    _, adapted = base_and_adapted(tokenizer)
    before = {k: v.clone() for k, v in adapted.state_dict().items()}
    trainer = TransformerTrainer(adapted, batches(tokenizer), "cpu", {"max_steps": 5, "lr": 1e-2, "batch_size": 2,
                                 "seq_len": 64}, tokenizer=tokenizer, out_dir=tmp_path, progress=False,
                                 log=lambda text: None)
    assert {id(p) for g in trainer.optimizer.param_groups for p in g["params"]} == \
        {id(p) for n, p in adapted.named_parameters() if ".lora_" in n}  # 优化器里只有适配器
    trainer.train()
    after = adapted.state_dict()
    for key, value in before.items():
        if ".lora_" in key:
            continue
        assert torch.equal(value, after[key]), f"底座权重 {key} 被改了"
    assert not torch.equal(before["layers.0.attention.wqkv.lora_B"], after["layers.0.attention.wqkv.lora_B"])
    x = torch.randint(0, tokenizer.vocab_size, (2, 16))
    adapted.eval()
    with torch.no_grad():
        expected = adapted(x)
        merged = merge_lora(adapted)
        assert not any(isinstance(m, LoRALinear) for m in merged.modules())
        assert set(merged.state_dict()) == set(tiny_model(tokenizer.vocab_size).state_dict())  # 普通模型的键
        assert (merged(x) - expected).abs().max() < MERGE_TOLERANCE


def test_adapter_save_and_load_round_trip(tokenizer, tmp_path):
    _, adapted = base_and_adapted(tokenizer, rank=2)
    with torch.no_grad():
        for name, p in adapted.named_parameters():
            if name.endswith("lora_B"):
                p.normal_()
    save_adapter(adapted, LoRAConfig(rank=2, alpha=4.0), tmp_path / "adapter", base="runs/base")
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["rank"] == 2
    fresh, config = load_adapter(tiny_model(tokenizer.vocab_size), tmp_path / "adapter")
    assert config.rank == 2
    x = torch.randint(0, tokenizer.vocab_size, (1, 8))
    assert torch.equal(fresh(x), adapted(x))
    with pytest.raises(StudyGPTError, match="对不上"):
        load_adapter(tiny_model(tokenizer.vocab_size, n_layers=3), tmp_path / "adapter")


def test_unmerged_finetune_checkpoint_loads_with_its_adapters(tokenizer, tmp_path):
    _, adapted = base_and_adapted(tokenizer)
    trainer = TransformerTrainer(adapted, batches(tokenizer), "cpu", {"max_steps": 2, "batch_size": 2, "seq_len": 64},
                                 tokenizer=tokenizer, out_dir=tmp_path, progress=False, log=lambda text: None)
    trainer.run_info = {"lora": {"rank": 4, "alpha": 8.0, "dropout": 0.0}}
    trainer.train()
    loaded, _, meta = load_model(tmp_path / "last")
    assert sum(isinstance(m, LoRALinear) for m in loaded.modules()) == 8 and "lora" in meta


@pytest.mark.parametrize("kwargs, fragment", [({"rank": 0}, "rank=0"), ({"alpha": -1}, "alpha=-1"),
                                              ({"targets": ("wq",)}, "wq")])
def test_bad_lora_settings_are_clear_errors(kwargs, fragment):
    with pytest.raises(StudyGPTError, match=fragment):
        LoRAConfig(**kwargs)


def test_finetune_command_writes_adapter_and_a_merged_normal_checkpoint(tokenizer, tmp_path, capsys):
    from studygpt.cli.parser import main
    from studygpt.model.checkpoint import save_checkpoint
    base = tiny_model(tokenizer.vocab_size)
    save_checkpoint(tmp_path / "base", base, tokenizer)
    conv = tmp_path / "new.conv"
    conv.write_text("".join("E\n" + "".join(f"M {t}\n" for t in d) for d in DIALOGUES * 10), encoding="utf-8")
    args = ["finetune", str(tmp_path / "base"), "--data", str(conv), "--out", str(tmp_path / "ft"), "--lora-rank", "2",
            "--max-steps", "3", "--no-progress"]
    assert main(args + ["--merge"]) == 0
    out = capsys.readouterr().out
    assert "可训练参数" in out and (tmp_path / "ft" / "adapter" / "adapter_model.safetensors").is_file()
    merged, _, meta = load_model(tmp_path / "ft")
    assert "lora" not in meta and not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert main(["generate", str(tmp_path / "ft"), "你好", "--max-length", "4", "--seed", "0"]) == 0
    assert main(["finetune", str(tmp_path / "base"), "--out", str(tmp_path / "x")]) == 2  # 没给 --data 也没给 --example
    assert "二者选一" in capsys.readouterr().err


def test_unmerged_lora_checkpoint_exports_as_a_plain_llama(tokenizer, tmp_path):
    """没合并的 LoRA 检查点也能导出：导出前先合并，HF 模型的 logits 等于适配器模型的。"""
    pytest.importorskip("transformers")
    from transformers import AutoModelForCausalLM

    from studygpt.export.convert import export_run
    _, adapted = base_and_adapted(tokenizer)
    trainer = TransformerTrainer(adapted, batches(tokenizer), "cpu", {"max_steps": 2, "batch_size": 2, "seq_len": 64},
                                 tokenizer=tokenizer, out_dir=tmp_path / "run", progress=False, log=lambda text: None)
    trainer.run_info = {"lora": {"rank": 4, "alpha": 8.0, "dropout": 0.0}}
    trainer.train()
    loaded, _, _ = load_model(tmp_path / "run" / "last")
    out = export_run(tmp_path / "run" / "last", "hf", tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.tensor([tokenizer.encode("你好，你是谁？")])
    with torch.no_grad():
        assert (loaded(ids) - hf(ids).logits).abs().max() <= 1e-4
