"""特殊词元 (special tokens)：两种分词器（字符级 char.py、字节级 BPE bpe.py）共用的控制词元。

7 个基本词元固定排在词表最前面，编号固定：
    <|user|> 0 · <|assistant|> 1 · <|end|> 2 · <pad> 3 · <unk> 4 · <bos> 5 · <eos> 6
另有 5 个"思考与工具"词元 (EXTRA_TOKENS)，只在需要时追加到词表末尾（第 16、17 章的 SFT 用 add_tokens 加）：
    <think> </think>：助手的草稿 (scratchpad / reasoning)；
    <tool_call> </tool_call>：助手发出的工具调用（OpenAI 函数调用的形状：名字 + JSON 参数）；
    <|tool|>：工具返回结果的角色，像 <|user|> 一样由程序插入。
它们都只能由程序按编号插入（见 chat_format.py）；用户打出的 `<|end|>`、`<think>` 只是普通字符。
"""
USER, ASSISTANT, END, PAD, UNK, BOS, EOS = "<|user|>", "<|assistant|>", "<|end|>", "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = [USER, ASSISTANT, END, PAD, UNK, BOS, EOS]

THINK, THINK_END = "<think>", "</think>"
TOOL_CALL, TOOL_CALL_END = "<tool_call>", "</tool_call>"
TOOL = "<|tool|>"
EXTRA_TOKENS = [THINK, THINK_END, TOOL_CALL, TOOL_CALL_END, TOOL]

CONTROL_TOKENS = frozenset(SPECIAL_TOKENS + EXTRA_TOKENS)  # 不是文字的词元：解码时默认不显示（<unk> 除外）
