"""拆掉一个部件的实验 (break-it labs)：`studygpt lab NAME`，课程各章讲过的部件，拆掉一个再训练，看量出来的后果。
进来：快速上手的配方 (recipes/quickstart.py) 与一处改动；出去：对照组与实验组的损失、考试成绩、一张曲线图、判分。
broken.py 拆掉部件的模型与损失 · catalog.py 每个实验的问题、选项与判分规则 · run.py 训练两组、打印、画图、判分。
见 docs/zh/labs.md。
"""
