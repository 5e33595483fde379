"""语料 (corpus)，课程第 1–2 章：文字进来，对话出去。

    read.py        .conv / JSONL / TSV → 对话列表 + 跳过了什么的报告（read_dialogues）；留出验证集 split_validation
    builtin.py     内置语料（自写对话、chatterbot-corpus 中文、加法题）与固定的考试提示
    chains.py · chatterbot.py · skills.py    把单轮问答串成多轮链；chatterbot 转换；加法技能题
    download.py    `studygpt data download xiaohuangji`（断点续传、校验）
"""
