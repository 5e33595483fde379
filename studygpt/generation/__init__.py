"""生成 (generation)，课程第 8 章：模型 + 提示 → 回答（逐个词元）。

    generate.py    采样设置、prefill / decode_one_token / sample、generate_response、stream_response
    batch_decode.py 长短不一的提示一起解码；fast_decode.py 编译的逐词解码；inference.py 加载模型用于推理
    chat.py        交互式多轮聊天 chat_loop
"""
