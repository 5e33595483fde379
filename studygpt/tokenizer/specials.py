"""特殊词元 (special tokens)：两种分词器（字符级 char.py、字节级 BPE bpe.py）共用的 7 个控制词元。

它们固定排在词表最前面，编号固定：
    <|user|> 0 · <|assistant|> 1 · <|end|> 2 · <pad> 3 · <unk> 4 · <bos> 5 · <eos> 6
只能由程序按编号插入（见 chat_format.py）；用户打出的 `<|end|>` 只是普通字符。
"""
USER, ASSISTANT, END, PAD, UNK, BOS, EOS = "<|user|>", "<|assistant|>", "<|end|>", "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = [USER, ASSISTANT, END, PAD, UNK, BOS, EOS]
