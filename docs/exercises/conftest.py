"""练习测试的公共设置：在 pytest 的开头说明这次检查的是你的答案还是参考答案。"""
from exercise_loader import using_solutions


def pytest_report_header(config):
    checked = "参考答案 solutions/ (STUDYGPT_SOLUTIONS=1)" if using_solutions() else "你的答案 docs/exercises/chNN_*.py"
    return f"练习 (exercises)：检查{checked}"
