"""词表怎样带出去 (how the vocabulary leaves)：同一个字符级分词器，写成两种外部格式。

- Hugging Face：`tokenizer.json`（`tokenizers` 库）——WordLevel 模型 + "每个字符切一刀"的预分词器，
  于是每个字符恰好一个词元、编号与我们的 vocab.txt 完全相同；词表外的字符 → `<unk>`，和我们一样。
- GGUF (llama.cpp)：SentencePiece 式的 `llama` 词表——每个字符一个词元，空格写成 `▁`，
  末尾再加 256 个字节词元 `<0x00>`…`<0xFF>`：llama.cpp 遇到词表外的字符会把它拆成 UTF-8 字节，
  没有字节词元它就无法编码（字节回退 byte fallback）。我们的编号 0..V-1 不变，字节词元排在 V..V+255。

两种格式都用同一个对话模板 `CHAT_TEMPLATE` (Jinja)，渲染出和 chat_format.render_prompt 完全一样的文字。

一处不同（也写在 docs/export.md）：我们的 `encode` 把用户打出的 `<|end|>` 当 7 个普通字符；
外部工具把特殊词元的写法认成控制词元（transformers 总是这样，llama.cpp 在 parse_special 时这样）。
对话模板本来就要靠这一点把 `<|user|>` 等写成文字再编码。

以后加新的分词器（如 BPE）时，只改这个文件：`hf_tokenizer_files` 与 `gguf_vocab` 各加一个分支。
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from studygpt.errors import StudyGPTError
from studygpt.tokenizer import ASSISTANT, BOS, END, PAD, SPECIAL_TOKENS, UNK, USER, Tokenizer

# 对话模板：只有用户、助手两种角色，没有系统提示 (system prompt)——我们的模型没学过它。
# {%- -%} 去掉模板自身的换行，输出里只剩对话本身。
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}" + USER + "{{ message['content'] }}" + END +
    "{%- elif message['role'] == 'assistant' -%}" + ASSISTANT + "{{ message['content'] }}" + END +
    "{%- else -%}{{ raise_exception('StudyGPT 只认 user 和 assistant 两种角色 (no system role)') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}" + ASSISTANT + "{%- endif -%}"
)

SPACE_PIECE = "\u2581"  # SentencePiece 用 ▁ (U+2581) 表示空格
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """导出后的四个特殊编号。eos 用 `<|end|>`：模型学会的"说完了"就是它，生成工具见到 eos 才会停。"""
    return {"bos": tokenizer.token_id(BOS), "eos": tokenizer.token_id(END),
            "unk": tokenizer.token_id(UNK), "pad": tokenizer.token_id(PAD)}


def require_character_tokenizer(tokenizer: Tokenizer) -> None:
    """导出只支持字符级分词器：除特殊词元外每个词元正好一个字符。别的分词器给一句明确的错误。"""
    if not isinstance(tokenizer, Tokenizer) or any(len(t) != 1 for t in tokenizer.id_to_token if t not in SPECIAL_TOKENS):
        raise StudyGPTError(f"导出目前只支持字符级分词器 (character tokenizer)，这个检查点的是 {type(tokenizer).__name__}；"
                            "请在 studygpt/export/vocab.py 的 hf_tokenizer_files / gguf_vocab 里加上它的写法。")


# ===== 1. Hugging Face：tokenizer.json 与 tokenizer_config.json =====
def hf_tokenizer_files(tokenizer: Tokenizer, max_len: int) -> dict[str, str]:
    """我们的 Tokenizer → {文件名: 内容}：tokenizer.json（`tokenizers` 库）与 tokenizer_config.json。

    tokenizer_config.json 自己写、只用 transformers 4.x 与 5.x 都认的字段（它们的 save_pretrained 写出的字段不同，
    5.x 写的 4.x 读不了）；加载成快速分词器 (PreTrainedTokenizerFast)。max_len：模型的上下文长度。
    """
    from tokenizers import AddedToken, Regex
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    require_character_tokenizer(tokenizer)
    backend = HFTokenizer(models.WordLevel(dict(tokenizer.vocab), unk_token=UNK))
    # [\s\S] 匹配任意一个字符（包括换行）；isolated：每个字符自成一段，于是一个字符查一次词表
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()  # 解码时直接拼接，不在词元之间加空格
    # 特殊词元整段匹配（对话模板要靠它把 "<|user|>" 写成文字再编码），编号不变（它们已在词表里）
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    ids, by_id = special_ids(tokenizer), tokenizer.id_to_token
    named = {f"{name}_token": by_id[ids[name]] for name in ("bos", "eos", "unk", "pad")}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", **named,
              "additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in named.values()],
              "chat_template": CHAT_TEMPLATE, "model_max_length": max_len, "clean_up_tokenization_spaces": False}
    return {"tokenizer.json": backend.to_str(pretty=True),
            "tokenizer_config.json": json.dumps(config, ensure_ascii=False, indent=2) + "\n"}


# ===== 2. GGUF：SentencePiece 式的 llama 词表 =====
@dataclass
class GGUFVocab:
    tokens: list[str]       # 编号 → 词元文字：我们的 V 个，再加 256 个字节词元
    scores: list[float]     # SentencePiece 的合并分数；单字符词表没有可合并的，全是 0
    token_types: list[int]  # gguf.TokenType：NORMAL / CONTROL / UNKNOWN / BYTE
    ids: dict[str, int]     # bos / eos / unk / pad


def gguf_vocab(tokenizer: Tokenizer) -> GGUFVocab:
    """我们的 Tokenizer → llama.cpp 的 `llama` (SentencePiece) 词表：空格写成 ▁，末尾加 256 个字节词元。"""
    require_character_tokenizer(tokenizer)
    from gguf import TokenType

    if SPACE_PIECE in tokenizer.vocab:
        raise StudyGPTError(f"词表里有字符 {SPACE_PIECE!r} (U+2581)，SentencePiece 用它表示空格，导出后会与空格混淆；"
                            "请在训练语料里把它换掉后重新训练。")
    tokens, types = [], []
    for token in tokenizer.id_to_token:
        if token == UNK:
            types.append(TokenType.UNKNOWN)
        elif token in SPECIAL_TOKENS:
            types.append(TokenType.CONTROL)  # 控制词元：只由程序（对话模板）插入
        else:
            types.append(TokenType.NORMAL)
        tokens.append(SPACE_PIECE if token == " " else token)
    tokens += BYTE_TOKENS
    types += [TokenType.BYTE] * len(BYTE_TOKENS)
    return GGUFVocab(tokens, [0.0] * len(tokens), [int(t) for t in types], special_ids(tokenizer))
