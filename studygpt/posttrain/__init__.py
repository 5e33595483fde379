"""后训练 (post-training)，课程第 14–15 章：目标函数与数据，训练循环还是 training/trainer.py 那一个。

    tasks.py       可验证的任务（add3、sub2）与精确的奖励
    dpo.py         偏好微调 DPO：偏好文件、序列对数概率、dpo_loss
    rl.py          强化学习 GRPO：一组回答、组相对优势、裁剪比率、KL 惩罚
"""
