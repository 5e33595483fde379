"""训练方案 (recipes)：把下面各层按数据流串成一次完整的运行，每种运行一个文件。

    train.py       `studygpt train`：RunSpec → train_from_spec / resume_from；presets.py 预设 tiny / small / study
    quickstart.py  快速上手；finetune.py LoRA 微调；posttrain.py `studygpt sft / rl / dpo`
    report.py      运行结束：summary.json 与 report.md
"""
