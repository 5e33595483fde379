"""安全的计算器 (safe calculator)：模型调用的工具。只认整数、+ − × ÷ 和括号，绝不用 eval。

为什么不能 `eval(expression)`：表达式是模型写的，而模型的输入来自用户。`eval("__import__('os').system(...)")`
会执行任意代码；就算只给数字，`9**9**9` 也能让机器算到天荒地老。所以这里自己写一个很小的解析器：

    表达式 expr   := 项 term   （(+ | -) 项）*
    项 term       := 因子 factor（(* | /) 因子）*
    因子 factor   := 整数 | (- 因子) | ( 表达式 )

每条规则一个函数，函数互相调用（递归下降 recursive descent），乘除自然比加减先算。
所有限制都先检查：长度、括号深度、数字位数、结果大小；出错时抛 CalculatorError，调用者把它变成一条工具错误消息。
除法得到分数 (fractions.Fraction)，不丢精度；显示时整数就是整数，否则最多 6 位小数。
"""
from __future__ import annotations

from fractions import Fraction

MAX_CHARS = 200      # 表达式最长多少个字符
MAX_DEPTH = 20       # 括号最多套几层（递归深度有界，10000 层的括号不会让 Python 栈溢出）
MAX_DIGITS = 30      # 一个数字最多几位
MAX_RESULT_DIGITS = 60  # 结果（分子、分母）最多几位：连乘不会变成天文数字

_SYMBOLS = {"+": "+", "-": "-", "−": "-", "*": "*", "×": "*", "/": "/", "÷": "/", "(": "(", ")": ")",
            "（": "(", "）": ")"}


class CalculatorError(ValueError):
    """表达式不合法或超出限制：消息是给模型和用户看的一句中文。"""


def tokenize(expression: str) -> list[str]:
    """'12×(3+4)' → ['12', '*', '(', '3', '+', '4', ')']：数字连成一个记号，符号统一成 ASCII，空格跳过。"""
    if len(expression) > MAX_CHARS:
        raise CalculatorError(f"表达式太长（{len(expression)} 个字符，最多 {MAX_CHARS}）")
    tokens: list[str] = []
    number = ""
    for ch in expression:
        if "0" <= ch <= "9":  # 只认 ASCII 数字：'٣'.isdigit() 也是 True
            number += ch
            continue
        if number:
            tokens.append(number)
            number = ""
        if ch in _SYMBOLS:
            tokens.append(_SYMBOLS[ch])
        elif not ch.isspace():
            raise CalculatorError(f"不认识的字符 {ch!r}：只能用整数、+ - × ÷ 和括号")
    if number:
        tokens.append(number)
    for t in tokens:
        if t.isdigit() and len(t) > MAX_DIGITS:
            raise CalculatorError(f"数字太长（{len(t)} 位，最多 {MAX_DIGITS} 位）")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens, self.pos, self.depth = tokens, 0, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise CalculatorError("表达式不完整")
        self.pos += 1
        return token

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            value = check_size(value + self.term() if op == "+" else value - self.term())
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take()
            right = self.factor()
            if op == "/" and right == 0:
                raise CalculatorError("不能除以 0")
            value = check_size(value * right if op == "*" else value / right)
        return value

    def factor(self) -> Fraction:
        token = self.take()
        if token.isdigit():
            return Fraction(int(token))
        if token in ("-", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise CalculatorError(f"括号或负号套得太深（最多 {MAX_DEPTH} 层）")
            if token == "-":
                value = -self.factor()
            else:
                value = self.expr()
                if self.take() != ")":
                    raise CalculatorError("括号没有配对")
            self.depth -= 1
            return value
        raise CalculatorError(f"这里应该是数字或括号，却是 {token!r}")


def check_size(value: Fraction) -> Fraction:
    if max(len(str(abs(value.numerator))), len(str(value.denominator))) > MAX_RESULT_DIGITS:
        raise CalculatorError(f"结果太大（超过 {MAX_RESULT_DIGITS} 位）")
    return value


def calculate(expression: str) -> Fraction:
    """算出表达式的值（分数）；任何不合法或超限的输入都抛 CalculatorError，不会有别的异常。"""
    tokens = tokenize(expression)
    if not tokens:
        raise CalculatorError("表达式是空的")
    parser = _Parser(tokens)
    value = parser.expr()
    if parser.peek() is not None:
        raise CalculatorError(f"多出来的 {parser.peek()!r}：括号没有配对，或少了运算符")
    return value


def format_number(value: Fraction) -> str:
    """整数照写；否则四舍五入到最多 6 位小数，去掉结尾的 0：Fraction(7, 2) → '3.5'。"""
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"
