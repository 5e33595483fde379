"""练习的加载器 (exercise loader)：测试默认导入你要完成的练习文件；设置环境变量 STUDYGPT_SOLUTIONS=1 时导入参考答案。

    pytest docs/exercises -k ch05                        # 检查你的答案
    STUDYGPT_SOLUTIONS=1 pytest docs/exercises -k ch05   # 看参考答案能通过（Windows PowerShell：$env:STUDYGPT_SOLUTIONS=1）
"""
import importlib
import os
from types import ModuleType


def using_solutions() -> bool:
    return os.environ.get("STUDYGPT_SOLUTIONS") == "1"


def load(name: str) -> ModuleType:
    """load("ch05_attention") → 你的 docs/exercises/ch05_attention.py，或参考答案 solutions/ch05_attention.py。"""
    return importlib.import_module(("solutions." if using_solutions() else "") + name)
