"""导出成 Hugging Face transformers 的文件夹：`AutoModelForCausalLM.from_pretrained` 读成 LlamaForCausalLM。

我们的模型本来就是 Llama 的形状（前置 RMSNorm、rotate-half 的 RoPE、SwiGLU、共享输入输出嵌入），
所以不需要改任何数学，只要：
1. 把融合的矩阵切开 (wqkv → q/k/v，w13 → gate/up)，改成 Hugging Face 的名字；
2. 写一个字段一一对应的 config.json；
3. 写分词器 (vocab.py) 和生成设置 generation_config.json。

HF 的 LlamaAttention 也是"前一半与后一半配对"的 rotate-half 写法，q、k 不需要重排（GGUF 需要，见 gguf.py）。
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from studygpt.export.vocab import hf_tokenizer_files, special_ids
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer


def hf_state_dict(model: DialogueModel) -> dict[str, torch.Tensor]:
    """我们的权重 → Hugging Face Llama 的名字与形状（都是 (out, in) 的 nn.Linear 权重）。

    共享嵌入 (tied embeddings)：只存 model.embed_tokens.weight，lm_head 由 tie_word_embeddings=True 指向它。
    """
    c = model.config
    out = {"model.embed_tokens.weight": model.tok_embeddings.weight, "model.norm.weight": model.norm.weight}
    for i, block in enumerate(model.layers):
        p = f"model.layers.{i}."
        q, k, v = block.attention.wqkv.weight.split(c.d_model, dim=0)       # (3C, C) → 三个 (C, C)
        gate, up = block.feed_forward.w13.weight.split(c.ffn_hidden, dim=0)  # (2H, C) → 两个 (H, C)
        out.update({
            p + "input_layernorm.weight": block.attention_norm.weight,
            p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k, p + "self_attn.v_proj.weight": v,
            p + "self_attn.o_proj.weight": block.attention.wo.weight,
            p + "post_attention_layernorm.weight": block.ffn_norm.weight,
            p + "mlp.gate_proj.weight": gate, p + "mlp.up_proj.weight": up,
            p + "mlp.down_proj.weight": block.feed_forward.w2.weight,
        })
    return {name: t.detach().float().contiguous().cpu() for name, t in out.items()}


def hf_config(model: DialogueModel, tokenizer: Tokenizer):
    """与我们的 ModelConfig 一一对应的 LlamaConfig。每个字段都影响数学，错一个 logits 就对不上。"""
    from transformers import LlamaConfig

    c, ids = model.config, special_ids(tokenizer)
    return LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.ffn_hidden,
        num_hidden_layers=c.n_layers, num_attention_heads=c.n_head, num_key_value_heads=c.n_head,
        head_dim=c.head_size, hidden_act="silu", max_position_embeddings=c.max_len,
        rms_norm_eps=c.norm_eps, rope_parameters={"rope_type": "default", "rope_theta": c.rope_base},
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
        bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"],
        torch_dtype="float32", architectures=["LlamaForCausalLM"])


def write_hf(model: DialogueModel, tokenizer: Tokenizer, folder: Path) -> list[Path]:
    """把模型写进（空的）文件夹 folder：config.json、model.safetensors、分词器文件、generation_config.json。"""
    from safetensors.torch import save_file
    from transformers import GenerationConfig

    hf_config(model, tokenizer).save_pretrained(folder)
    # transformers 4.x 在顶层读 rope_theta，5.x 读 rope_parameters：两处都写上同一个值
    config_file = folder / "config.json"
    fields = json.loads(config_file.read_text(encoding="utf-8"))
    config_file.write_text(json.dumps({**fields, "rope_theta": model.config.rope_base}, indent=2) + "\n", encoding="utf-8")
    save_file(hf_state_dict(model), str(folder / "model.safetensors"), metadata={"format": "pt"})
    for name, text in hf_tokenizer_files(tokenizer, model.config.max_len).items():
        (folder / name).write_text(text, encoding="utf-8")
    ids = special_ids(tokenizer)
    # 默认贪心、见到 <|end|> 就停，与 `studygpt generate --temperature 0` 一致
    GenerationConfig(bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"],
                     do_sample=False).save_pretrained(folder)
    return sorted(folder.iterdir())
