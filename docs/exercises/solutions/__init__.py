"""练习的参考答案 (reference solutions)。先自己做，再来对照。"""
