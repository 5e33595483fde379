"""第 17 章练习：安全的计算器与工具调用的解析。检查：pytest docs/exercises -k ch17

对照：studygpt/generation/calculator.py 的 calculate，studygpt/generation/tool_use.py 的 parse_call。
"""
from fractions import Fraction


def calculate(expression: str) -> Fraction:
    """练习 17.1：不用 eval 的计算器。只认非负整数、+ - * / 和括号（空格跳过），返回分数 Fraction。

    递归下降：expr := term ((+|-) term)*；term := factor ((*|/) factor)*；factor := 整数 | -factor | ( expr )。
    任何不合法或危险的输入都抛 ValueError（不能是别的异常）：
      - 表达式超过 200 个字符；括号（或负号）套了超过 20 层；
      - 除以 0；不认识的字符（如 `_`、`**` 里的第二个 `*` 也算语法错）；括号不配对；空表达式。
    calculate("2*(3+4)") → Fraction(14)；calculate("7/2") → Fraction(7, 2)
    """
    raise NotImplementedError("练习 17.1：安全的计算器")


def parse_tool_call(text: str) -> tuple[str, dict]:
    """练习 17.2：解析模型写在 <tool_call> 里的 JSON：{"name": "calculator", "arguments": {"expression": "1+2"}}。

    返回 (name, arguments)。arguments 也可以是"内容是 JSON 对象的字符串"（OpenAI 接口就是这样传的），要解开。
    不是 JSON、不是对象、没有字符串 name、arguments 不是对象：都抛 ValueError。
    """
    raise NotImplementedError("练习 17.2：解析工具调用")
