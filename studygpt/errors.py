"""用户能看懂、能照着改的错误 (errors a learner can act on).

凡是用户输入造成的问题（文件不存在、格式不对、配置不合理），都抛出 `StudyGPTError`，
消息是一句话：哪个文件、哪一行、怎么改。命令行 (cli/parser.py) 捕获它，只打印这一行并以非零状态退出，
不打印 traceback。程序自身的 bug 仍然是普通异常，照常带 traceback。
"""


class StudyGPTError(Exception):
    """一行可操作的错误信息 (one actionable line: what, where, and the fix)."""
