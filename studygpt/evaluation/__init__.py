"""评估 (evaluation)，课程第 9 章：模型 + 留出的数据 → 成绩单。

    metrics.py     `studygpt eval`：loss、bpc、<unk> 比例、distinct-n、重复率，并排比较的表格
    exam.py        快速上手的三场考试：固定聊天问题、留出的加法、5 轮对话
"""
