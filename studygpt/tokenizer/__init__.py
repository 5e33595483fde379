"""分词器 (tokenizer)，课程第 2、3、12 章：文字 ↔ 词元编号 (ids)，对话 → (ids, labels)。

    specials.py    7 个特殊词元；char.py 字符级 Tokenizer 与 vocab.txt；bpe.py 字节级 BPETokenizer
    load.py        按文件选分词器 load_tokenizer；lab.py `studygpt tokenizer train`
    chat_format.py 唯一的对话渲染 render_conversation → (ids, labels)；聊天提示放得下多少 fit_prompt
"""
