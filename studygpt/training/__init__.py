"""训练 (training)，课程第 7、10 章：模型 + 批次 → 更新过的模型、metrics.jsonl 与检查点。

    trainer.py     TransformerTrainer：唯一的训练循环（所有训练方式共用）
    optim.py       TrainConfig、AdamW、预热 + 余弦；validation.py 验证损失与 bpc；state.py 精确续训的状态
    forecast.py · overfit.py · metrics_log.py · distributed.py   训练前的预测、过拟合警报、日志、多卡
    progress.py    进度怎样显示：终端里一条进度条（日志行写在它上方），管道与日志里每 10 秒一行、没有回车
"""
