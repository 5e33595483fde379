"""用户能看懂、能照着改的错误 (errors a learner can act on).

凡是用户输入造成的问题（文件不存在、格式不对、配置不合理），都抛出 `StudyGPTError`，
消息是一句话：哪个文件、哪一行、怎么改。命令行 (cli/parser.py) 捕获它，只打印这一行并以非零状态退出，
不打印 traceback。程序自身的 bug 仍然是普通异常，照常带 traceback。
"""


class StudyGPTError(Exception):
    """一行可操作的错误信息 (one actionable line: what, where, and the fix)."""



INT_LIMIT = 2**63 - 1  # 配置里整数的上限：PyTorch 的形状与种子都是 int64，再大就放不进去（放得进但内存不够由 model/checks.py 按 GB 说）


def check_field_types(config) -> None:
    """dataclass 配置的每个字段是不是它声明的类型：int 字段要整数（不收 1.5、true、10**30），float 字段要有限的数
    （不收 nan、inf，整数会换成 float），bool 字段要 true/false。命令行的 `--key value` 什么都可能写进来
    （`--lr abc` 进来的是字符串 "abc"），先在这里说清是哪个字段，之后的大小比较才不会变成 TypeError 或训练中途的
    traceback。tuple 字段由各配置自己检查。"""
    import dataclasses
    import math
    for f in dataclasses.fields(config):
        allowed = {t.strip() for t in str(f.type).split("|")}
        value = getattr(config, f.name)
        if str(f.type).startswith("tuple") or (value is None and "None" in allowed):
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        as_float = float(value) if number and abs(value) < 1e300 else math.inf  # float(10**400) 会 OverflowError
        if "bool" in allowed:
            ok, want = isinstance(value, bool), "true 或 false"
        elif "int" in allowed:
            ok, want = abs(as_float) <= INT_LIMIT and as_float.is_integer(), f"绝对值 ≤ {INT_LIMIT} 的整数 (integer)"
            if ok:
                setattr(config, f.name, int(value))
        elif "float" in allowed:
            ok, want = math.isfinite(as_float), "有限的数 (finite number)"
            if ok:
                setattr(config, f.name, as_float)  # 10**30 这样的大整数先变成 float，之后算 RoPE 等不会溢出
        else:
            continue
        if not ok:
            raise StudyGPTError(f"{type(config).__name__} 的 {f.name}={value!r} 无效：请用{want}。")
