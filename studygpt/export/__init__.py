"""导出 (export)，课程第 11 章：训练好的模型 → 别的工具能加载的文件。`studygpt export RUN --to hf|gguf OUT`。

    convert.py     入口 export_run：先检查请求，再加载模型、原子地写出；hf.py Hugging Face transformers 的文件夹
    gguf.py        GGUF 单个文件（llama.cpp / Ollama / LM Studio），f32 / f16 / q8_0；model_card.py 模型卡
    vocab.py       字符级与字节级 BPE 词表各写成两种格式；共用的对话模板。只依赖核心，第三方包是可选依赖 .[export]
"""
