"""第 17 章练习的参考答案。"""
import json
from fractions import Fraction


def calculate(expression: str) -> Fraction:
    if len(expression) > 200:
        raise ValueError("表达式太长")
    tokens, number = [], ""
    for ch in expression + " ":
        if "0" <= ch <= "9":
            number += ch
            continue
        if number:
            tokens.append(number)
            number = ""
        if ch in "+-*/()":
            tokens.append(ch)
        elif not ch.isspace():
            raise ValueError(f"不认识的字符 {ch!r}")
    pos, depth = 0, 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("表达式不完整")
        pos += 1
        return tokens[pos - 1]

    def expr():
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    def term():
        value = factor()
        while peek() in ("*", "/"):
            op, right = take(), factor()
            if op == "/" and right == 0:
                raise ValueError("除以 0")
            value = value * right if op == "*" else value / right
        return value

    def factor():
        nonlocal depth
        token = take()
        if token.isdigit():
            return Fraction(int(token))
        if token not in ("-", "("):
            raise ValueError(f"这里应是数字或括号：{token!r}")
        depth += 1
        if depth > 20:
            raise ValueError("套得太深")
        if token == "-":
            value = -factor()
        else:
            value = expr()
            if take() != ")":
                raise ValueError("括号不配对")
        depth -= 1
        return value

    value = expr()
    if peek() is not None:
        raise ValueError(f"多出来的 {peek()!r}")
    return value


def parse_tool_call(text: str) -> tuple[str, dict]:
    try:
        call = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ValueError("不是 JSON") from err
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ValueError("应是 {name, arguments}")
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError) as err:
            raise ValueError("arguments 不是 JSON") from err
    if not isinstance(arguments, dict):
        raise ValueError("arguments 应是对象")
    return call["name"], arguments
