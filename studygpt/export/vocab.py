"""词表怎样带出去 (how the vocabulary leaves)：两种分词器，各写成两种外部格式。

字符级分词器 (character tokenizer, tokenizer/char.py)：
- Hugging Face：`tokenizer.json`（`tokenizers` 库）——WordLevel 模型 + "每个字符切一刀"的预分词器，
  于是每个字符恰好一个词元、编号与我们的 vocab.txt 完全相同；词表外的字符 → `<unk>`，和我们一样。
- GGUF (llama.cpp)：SentencePiece 式的 `llama` 词表——每个字符一个词元，空格写成 `▁`，
  末尾再加 256 个字节词元 `<0x00>`…`<0xFF>`：llama.cpp 遇到词表外的字符会把它拆成 UTF-8 字节，
  没有字节词元它就无法编码（字节回退 byte fallback）。我们的编号 0..V-1 不变，字节词元排在 V..V+255。

字节级 BPE (byte-level BPE, tokenizer/bpe.py)：它本来就是 `tokenizers` 的分词器，也是 GPT-2 那一种，
两边都有现成的写法，编号一个不变、一个不加：
- Hugging Face：`tokenizer.json` 就是它自己的 JSON（字节级预分词器、BPE 词表与合并规则、ByteLevel 解码器）；
- GGUF：`gpt2` 词表——词元照 JSON 里的字节级写法、合并规则 (merges) 写成 "a b"，预分词规则 `gpt-2`
  （llama.cpp 里与 `tokenizers` 的 ByteLevel 是同一个正则）。每个字节本来就在词表里，不需要补字节词元。

分词器之间的不同只在这个文件：`EXPORTERS` 按分词器的种类 (`tokenizer_kind`) 选写法。
两种格式都用同一个对话模板 (Jinja，`chat_template`)，渲染出和 chat_format.render_prompt 完全一样的文字；
学过 <think>、<tool_call> 的模型（第 16、17 章）的模板还认 reasoning_content、tool_calls 和 role 为 tool 的消息，
这些追加的词元和 7 个基本特殊词元一样导出成控制词元。

一处不同（也写在 docs/export.md）：我们的 `encode` 把用户打出的 `<|end|>` 当普通文字；
外部工具把特殊词元的写法认成控制词元（transformers 总是这样，llama.cpp 在 parse_special 时这样）。
对话模板本来就要靠这一点把 `<|user|>` 等写成文字再编码。
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from studygpt.errors import StudyGPTError
from studygpt.tokenizer.bpe import BPETokenizer
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import (
    ASSISTANT,
    BOS,
    CONTROL_TOKENS,
    END,
    PAD,
    THINK,
    THINK_END,
    TOOL,
    TOOL_CALL,
    TOOL_CALL_END,
    UNK,
    USER,
)

# ===== 对话模板 (chat template)：Jinja，渲染出和 chat_format.render_conversation / render_prompt 一样的文字 =====
# 没有系统提示 (system prompt)——我们的模型没学过它。{%- -%} 去掉模板自身的空白，输出里只剩对话本身。

# 助手消息里的一次工具调用 → <tool_call>{"name":"calculator","arguments":{"expression":"457+386"}}</tool_call>，
# 与 tool_use.format_call 逐字相同（紧凑写法，没有空格）。参数是 JSON 对象时逐项写 "键":值，不用 tojson 整个对象：
# transformers 的 tojson 默认带空格，llama.cpp 的 tojson 不收 separators 参数。参数已是 JSON 字符串（OpenAI 的写法）时原样放进去。
# 字面的 { } 写成 {{ '{' }}：紧挨着 {% 或 {{ 的花括号会被 Jinja 当成标签的一部分。
TOOL_CALL_JINJA = (
    "{%- if message['tool_calls'] | length > 1 or message['content'] -%}"
    "{{ raise_exception('StudyGPT 的一次回答只调用一个工具，调用的那条消息没有正文 (content)') }}{%- endif -%}"
    "{%- set call = message['tool_calls'][0] -%}"
    "{%- if call['function'] is defined -%}{%- set call = call['function'] -%}{%- endif -%}"
    + TOOL_CALL + "{{ '{' }}\"name\":{{ call['name'] | tojson }},\"arguments\":"
    "{%- if call['arguments'] is string -%}{{ call['arguments'] }}"
    "{%- else -%}{{ '{' }}{%- for key, value in call['arguments'].items() -%}"
    "{{ key | tojson }}:{{ value | tojson }}{%- if not loop.last -%},{%- endif -%}"
    "{%- endfor -%}{{ '}' }}{%- endif -%}{{ '}' }}" + TOOL_CALL_END
)


def build_chat_template(reasoning: bool = False, tools: bool = False) -> str:
    """拼出对话模板。reasoning：助手消息的 reasoning_content 写进 <think>…</think>；
    tools：助手消息的 tool_calls（只许一个）写成 <tool_call>JSON</tool_call><|end|>，role 为 tool 的消息写成
    <|tool|>结果<|end|>。一次带工具的回答在消息里是三条：助手（调用）、工具（结果）、助手（正文），
    正是 chat_format 里 Reply 的渲染：<|assistant|>…<|end|><|tool|>843<|end|><|assistant|>正文<|end|>。
    """
    answer = "{{ message['content'] }}" + END  # 助手的正文
    if tools:  # 带调用的助手消息：写调用，不写正文（正文在工具结果之后的下一条助手消息里）
        answer = ("{%- if message['tool_calls'] is defined and message['tool_calls'] -%}" + TOOL_CALL_JINJA + END +
                  "{%- else -%}" + answer + "{%- endif -%}")
    if reasoning:  # 草稿写在最前面
        answer = ("{%- if message['reasoning_content'] is defined and message['reasoning_content'] -%}" +
                  THINK + "{{ message['reasoning_content'] }}" + THINK_END + "{%- endif -%}" + answer)
    tool = ("{%- elif message['role'] == 'tool' -%}" + TOOL + "{{ message['content'] }}" + END) if tools else ""
    roles = "user、assistant" + ("、tool" if tools else "")
    return (
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'user' -%}" + USER + "{{ message['content'] }}" + END +
        "{%- elif message['role'] == 'assistant' -%}" + ASSISTANT + answer + tool +
        "{%- else -%}{{ raise_exception('StudyGPT 只认 " + roles + " 这几种角色 (no system role)') }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}" + ASSISTANT + "{%- endif -%}"
    )


CHAT_TEMPLATE = build_chat_template()  # 普通的对话模型：只有用户与助手


def chat_template(tokenizer) -> str:
    """这个分词器的模型该用的对话模板：词表里有 <think> 才写草稿，有 <tool_call> 与 <|tool|> 才写工具调用与结果。"""
    vocab = tokenizer.vocab
    return build_chat_template(reasoning=THINK in vocab and THINK_END in vocab,
                               tools=all(t in vocab for t in (TOOL_CALL, TOOL_CALL_END, TOOL)))


def control_tokens(tokenizer) -> list[str]:
    """这个词表里的控制词元：7 个基本的，加上追加了的 <think> 等（specials.EXTRA_TOKENS），按编号排。"""
    vocab = tokenizer.vocab
    return sorted((t for t in CONTROL_TOKENS if t in vocab), key=vocab.__getitem__)


SPACE_PIECE = "\u2581"  # SentencePiece 用 ▁ (U+2581) 表示空格
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def special_ids(tokenizer) -> dict[str, int]:
    """导出后的四个特殊编号。eos 用 `<|end|>`：模型学会的"说完了"就是它，生成工具见到 eos 才会停。"""
    return {"bos": tokenizer.token_id(BOS), "eos": tokenizer.token_id(END),
            "unk": tokenizer.token_id(UNK), "pad": tokenizer.token_id(PAD)}


def tokenizer_kind(tokenizer) -> str:
    """"character" 或 "bpe"：决定用哪一种写法。字符级分词器要求除特殊词元外每个词元正好一个字符。"""
    if isinstance(tokenizer, BPETokenizer):
        return "bpe"
    if isinstance(tokenizer, Tokenizer) and all(len(t) == 1 for t in tokenizer.id_to_token if t not in CONTROL_TOKENS):
        return "character"
    raise StudyGPTError(f"导出只支持字符级分词器 (character tokenizer) 与字节级 BPE，这个检查点的是 {type(tokenizer).__name__}"
                        "（或字符级词表里有多字符的词元）；请在 studygpt/export/vocab.py 的 EXPORTERS 里加上它的写法。")


# ===== 1. Hugging Face：tokenizer.json 与 tokenizer_config.json =====
def character_backend(tokenizer: Tokenizer):
    """字符级 → tokenizers.Tokenizer：WordLevel 词表 + 每个字符切一刀，编号与 vocab.txt 相同。"""
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    backend = HFTokenizer(models.WordLevel(dict(tokenizer.vocab), unk_token=UNK))
    # [\s\S] 匹配任意一个字符（包括换行）；isolated：每个字符自成一段，于是一个字符查一次词表
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()  # 解码时直接拼接，不在词元之间加空格
    return backend


def bpe_backend(tokenizer: BPETokenizer):
    """字节级 BPE → 它自己的 tokenizers.Tokenizer 的一份拷贝（词表、合并规则、预分词器、解码器原样）。

    只改一处：我们加载时打开的 encode_special_tokens（用户文字里的 `<|end|>` 当普通文字）在拷贝上关掉，
    外部工具的对话模板要靠特殊词元的写法被认出来。这个开关本来也不写进 JSON，这里写明是为了不依赖那一点。
    """
    from tokenizers import Tokenizer as HFTokenizer

    backend = HFTokenizer.from_str(tokenizer.hf.to_str())
    backend.encode_special_tokens = False
    return backend


def hf_tokenizer_files(tokenizer, max_len: int) -> dict[str, str]:
    """我们的分词器 → {文件名: 内容}：tokenizer.json（`tokenizers` 库）与 tokenizer_config.json。

    tokenizer_config.json 自己写、只用 transformers 4.x 与 5.x 都认的字段（它们的 save_pretrained 写出的字段不同，
    5.x 写的 4.x 读不了）；加载成快速分词器 (PreTrainedTokenizerFast)。max_len：模型的上下文长度。
    """
    from tokenizers import AddedToken

    backend = EXPORTERS[tokenizer_kind(tokenizer)].hf_backend(tokenizer)
    # 控制词元整段匹配（对话模板要靠它把 "<|user|>"、"<think>" 写成文字再编码），编号不变（它们已在词表里）；
    # special=True：decode(skip_special_tokens=True) 时不显示，和我们的 decode 一样
    controls = control_tokens(tokenizer)
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in controls])
    ids, by_id = special_ids(tokenizer), tokenizer.id_to_token
    named = {f"{name}_token": by_id[ids[name]] for name in ("bos", "eos", "unk", "pad")}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", **named,
              "additional_special_tokens": [t for t in controls if t not in named.values()],
              "chat_template": chat_template(tokenizer), "model_max_length": max_len,
              "clean_up_tokenization_spaces": False}
    return {"tokenizer.json": backend.to_str(pretty=True),
            "tokenizer_config.json": json.dumps(config, ensure_ascii=False, indent=2) + "\n"}


# ===== 2. GGUF：llama (SentencePiece) 或 gpt2 (字节级 BPE) 词表 =====
@dataclass
class GGUFVocab:
    model: str              # tokenizer.ggml.model："llama" 或 "gpt2"
    pre: str                # tokenizer.ggml.pre：预分词规则的名字
    tokens: list[str]       # 编号 → 词元文字
    token_types: list[int]  # gguf.TokenType：NORMAL / CONTROL / UNKNOWN / BYTE
    ids: dict[str, int]     # bos / eos / unk / pad
    scores: list[float] = field(default_factory=list)  # 只有 llama：SentencePiece 的分数
    merges: list[str] = field(default_factory=list)    # 只有 gpt2：合并规则 "a b"，先学到的在前


def character_gguf_vocab(tokenizer: Tokenizer) -> GGUFVocab:
    """字符级 → llama.cpp 的 `llama` (SentencePiece) 词表：空格写成 ▁，末尾加 256 个字节词元。"""
    from gguf import TokenType

    if SPACE_PIECE in tokenizer.vocab:
        raise StudyGPTError(f"词表里有字符 {SPACE_PIECE!r} (U+2581)，SentencePiece 用它表示空格，导出后会与空格混淆；"
                            "请在训练语料里把它换掉后重新训练。")
    tokens, types = [], []
    for token in tokenizer.id_to_token:
        if token == UNK:
            types.append(TokenType.UNKNOWN)
        elif token in CONTROL_TOKENS:
            types.append(TokenType.CONTROL)  # 控制词元（包括追加的 <think> 等）：只由程序（对话模板）插入
        else:
            types.append(TokenType.NORMAL)
        tokens.append(SPACE_PIECE if token == " " else token)
    tokens += BYTE_TOKENS
    types += [TokenType.BYTE] * len(BYTE_TOKENS)
    # 单字符词表没有可合并的，SentencePiece 分数全是 0
    return GGUFVocab("llama", "default", tokens, [int(t) for t in types], special_ids(tokenizer), scores=[0.0] * len(tokens))


def bpe_gguf_vocab(tokenizer: BPETokenizer) -> GGUFVocab:
    """字节级 BPE → llama.cpp 的 `gpt2` 词表：与 convert_hf_to_gguf.py 给 GPT-2 类模型写的一样。

    词元用 tokenizer.json 里的字节级写法（如 "ä½ł"），不是 id_to_token 的可读写法；7 个特殊词元和追加的 <think> 等
    都是控制词元 (CONTROL)，其余都是普通词元——256 个字节在字节级 BPE 里就是普通词元，不是 SentencePiece 的 BYTE。
    预分词规则 "gpt-2"：llama.cpp 的正则与 `tokenizers` 的 ByteLevel(use_regex=True) 相同。
    """
    from gguf import TokenType

    model = json.loads(tokenizer.hf.to_str())["model"]
    tokens = [tokenizer.hf.id_to_token(i) for i in range(tokenizer.vocab_size)]
    types = [TokenType.CONTROL if t in CONTROL_TOKENS else TokenType.NORMAL for t in tokens]
    # 新版 tokenizers 把一条合并写成 ["a", "b"]，旧版写成 "a b"；GGUF 要 "a b"（字节级写法里没有空格）
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return GGUFVocab("gpt2", "gpt-2", tokens, [int(t) for t in types], special_ids(tokenizer), merges=merges)


@dataclass(frozen=True)
class Exporter:
    """一种分词器的两种写法。"""
    hf_backend: Callable  # 分词器 → tokenizers.Tokenizer
    gguf_vocab: Callable  # 分词器 → GGUFVocab


EXPORTERS = {"character": Exporter(character_backend, character_gguf_vocab),
             "bpe": Exporter(bpe_backend, bpe_gguf_vocab)}


def gguf_vocab(tokenizer) -> GGUFVocab:
    """我们的分词器 → GGUF 词表（字符级 → llama，字节级 BPE → gpt2）。"""
    return EXPORTERS[tokenizer_kind(tokenizer)].gguf_vocab(tokenizer)
