"""导出成 GGUF（llama.cpp、Ollama、LM Studio 读的单个文件），架构写成 `llama`。

GGUF 是一个文件里放下一切：元数据（结构超参数、词表、对话模板）+ 张量。写法和 llama.cpp 自己的
convert_hf_to_gguf.py 一样，只差一步：我们从自己的权重出发（先变成 HF 的名字，见 hf.py）。

唯一要动数学布局的地方是 q、k 的 RoPE 配对方式：
- 我们（和 HF Llama）是 rotate-half：每个头的第 i 维与第 i + hs/2 维配成一对旋转；
- llama.cpp 的 llama 架构是相邻配对：第 2i 维与第 2i+1 维一对。
所以把 q、k 投影矩阵每个头的行重新排列（permute_for_llama_cpp），让第 i 行和第 i + hs/2 行挨在一起。
点积 q·k 对"维度怎样排列"不敏感，只要 q 和 k 排得一样，注意力结果不变。

数据类型：f32（不损失）、f16（半精度，文件小一半）、q8_0（每 32 个数一个缩放因子的 8 位整数，约 1/4）。
一维的归一化权重始终是 f32（llama.cpp 也这样做：它们很小，精度却要紧）。
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from studygpt.export.hf import hf_state_dict
from studygpt.export.vocab import chat_template, gguf_vocab
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import UNK

DTYPES = ("f32", "f16", "q8_0")

# HF 的名字 → GGUF 的名字（{i} 是层号）；与 llama.cpp 的 gguf.constants.MODEL_TENSOR 名字一致
HF_TO_GGUF = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "model.layers.{i}.input_layernorm.weight": "blk.{i}.attn_norm.weight",
    "model.layers.{i}.self_attn.q_proj.weight": "blk.{i}.attn_q.weight",
    "model.layers.{i}.self_attn.k_proj.weight": "blk.{i}.attn_k.weight",
    "model.layers.{i}.self_attn.v_proj.weight": "blk.{i}.attn_v.weight",
    "model.layers.{i}.self_attn.o_proj.weight": "blk.{i}.attn_output.weight",
    "model.layers.{i}.post_attention_layernorm.weight": "blk.{i}.ffn_norm.weight",
    "model.layers.{i}.mlp.gate_proj.weight": "blk.{i}.ffn_gate.weight",
    "model.layers.{i}.mlp.up_proj.weight": "blk.{i}.ffn_up.weight",
    "model.layers.{i}.mlp.down_proj.weight": "blk.{i}.ffn_down.weight",
}


def permute_for_llama_cpp(w: np.ndarray, n_head: int) -> np.ndarray:
    """q 或 k 的权重 (nh·hs, C)：每个头内部从 rotate-half 的顺序 [0, 1, …, hs/2-1 | hs/2, …, hs-1]
    改成相邻配对的顺序 [0, hs/2, 1, hs/2+1, …]。与 llama.cpp convert_hf_to_gguf.py 的 LlamaModel.permute 相同。"""
    hs = w.shape[0] // n_head
    # (nh, 2, hs/2, C)：第 1 维是"前一半/后一半"；交换成 (nh, hs/2, 2, C) 后，每对的两行就挨在一起了
    return w.reshape(n_head, 2, hs // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(model: DialogueModel, n_extra_tokens: int, unk_id: int) -> dict[str, np.ndarray]:
    """GGUF 名字 → float32 数组。q、k 重排；嵌入矩阵末尾补 n_extra_tokens 行（给字符级 llama 词表的字节词元；字节级 BPE 是 0）。

    补的行复制 `<unk>` 那一行：输入一侧，词表外的字节就像我们的 `<unk>`；输出一侧，字节词元的 logit
    等于 `<unk>` 的（模型学过 `<unk>` 几乎不该出现），贪心解码绝不会选它们——并列时选编号小的 `<unk>`。
    共享嵌入：不写 output.weight，llama.cpp 与 transformers 都会改用 token_embd.weight。
    """
    hf = hf_state_dict(model)
    out = {}
    for i in range(model.config.n_layers):
        for hf_name, gguf_name in HF_TO_GGUF.items():
            if "{i}" in hf_name:
                out[gguf_name.format(i=i)] = hf[hf_name.format(i=i)].numpy()
    for name in [n for n in out if n.endswith(("attn_q.weight", "attn_k.weight"))]:
        out[name] = permute_for_llama_cpp(out[name], model.config.n_head)
    emb = hf["model.embed_tokens.weight"]
    out["token_embd.weight"] = torch.cat([emb, emb[unk_id].expand(n_extra_tokens, -1)]).numpy()
    out["output_norm.weight"] = hf["model.norm.weight"].numpy()
    return out


def add_tensor(writer, name: str, data: np.ndarray, dtype: str) -> None:
    """按 dtype 写一个张量。一维张量（归一化权重）总是 f32；q8_0 需要每行长度是 32 的倍数，否则这一个张量退回 f16。"""
    from gguf import GGMLQuantizationType, quants

    if data.ndim == 1 or dtype == "f32":
        writer.add_tensor(name, data.astype(np.float32))
    elif dtype == "q8_0" and data.shape[-1] % 32 == 0:
        writer.add_tensor(name, quants.quantize(data, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
    else:
        writer.add_tensor(name, data.astype(np.float16))


def write_gguf(model: DialogueModel, tokenizer: Tokenizer, path: Path, dtype: str = "f32", name: str = "StudyGPT") -> Path:
    """写一个 GGUF 文件 path：结构超参数、词表与对话模板、全部张量。"""
    import gguf

    c = model.config
    vocab = gguf_vocab(tokenizer)
    writer = gguf.GGUFWriter(str(path), "llama")
    # ===== 1. 结构超参数 (hyper-parameters)：每一个都与 ModelConfig 对应 =====
    writer.add_name(name)
    writer.add_context_length(c.max_len)
    writer.add_embedding_length(c.d_model)
    writer.add_block_count(c.n_layers)
    writer.add_feed_forward_length(c.ffn_hidden)
    writer.add_head_count(c.n_head)
    writer.add_head_count_kv(c.n_head)
    writer.add_rope_dimension_count(c.head_size)
    writer.add_rope_freq_base(c.rope_base)
    writer.add_layer_norm_rms_eps(c.norm_eps)
    writer.add_vocab_size(len(vocab.tokens))
    writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                          "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype])
    # ===== 2. 词表与对话模板 (tokenizer) =====
    writer.add_tokenizer_model(vocab.model)  # llama（字符级）或 gpt2（字节级 BPE），见 vocab.py
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    if vocab.scores:
        writer.add_token_scores(vocab.scores)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.ids["bos"])
    writer.add_eos_token_id(vocab.ids["eos"])
    writer.add_eot_token_id(vocab.ids["eos"])  # 一轮结束 (end of turn) 也是 <|end|>
    writer.add_unk_token_id(vocab.ids["unk"])
    writer.add_pad_token_id(vocab.ids["pad"])
    writer.add_add_bos_token(False)    # 我们的提示不以 <bos> 开头
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)  # SentencePiece 默认在开头补一个空格，我们两种分词器都没有
    writer.add_chat_template(chat_template(tokenizer))
    # ===== 3. 张量 (tensors) =====
    tensors = gguf_tensors(model, len(vocab.tokens) - tokenizer.vocab_size, tokenizer.token_id(UNK))
    for tensor_name, data in tensors.items():
        add_tensor(writer, tensor_name, data, dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
