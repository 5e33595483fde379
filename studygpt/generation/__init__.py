"""生成 (generation)，课程第 8 章：模型 + 提示 → 回答（逐个词元）。

    generate.py    采样设置、prefill / decode_one_token / sample、generate_response、stream_response
    batch_decode.py 长短不一的提示一起解码；fast_decode.py 编译的逐词解码；inference.py 加载模型用于推理
    calculator.py  安全的计算器；tool_use.py 草稿与工具调用：stream_reply / respond（第 16、17 章）
    chat.py        交互式多轮聊天 chat_loop；ReplyPrinter 显示回答（/think 时连同草稿与调用）
"""
