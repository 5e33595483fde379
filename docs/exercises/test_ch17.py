"""第 17 章练习的测试：pytest docs/exercises -k ch17。参照答案是真正在用的 studygpt/generation/calculator.py 与 tool_use.py。"""
import json
from fractions import Fraction

import pytest
from exercise_loader import load

from studygpt.generation.calculator import calculate
from studygpt.generation.tool_use import parse_call

ex = load("ch17_tools")


def test_calculator_values_match_studygpt():
    for expression in ["457+386", "2*(3+4)", "7/2", "8-2-1", "100/10/5", "-3--3", "((1))", " 12 * 3 "]:
        got = ex.calculate(expression)
        assert got == calculate(expression), f"{expression!r}：应为 {calculate(expression)}，你的是 {got!r}"
    assert ex.calculate("7/2") == Fraction(7, 2), "除法要得到分数，不能丢精度"


@pytest.mark.parametrize("hostile", ["9" * 10000, "__import__('os').system('ls')", "(" * 10000 + "1" + ")" * 10000,
                                     "1/0", "(1+2", "", "2**3", "(" * 25 + "1" + ")" * 25])
def test_calculator_refuses_hostile_input_with_value_error(hostile):
    with pytest.raises(ValueError):
        ex.calculate(hostile)


def test_parse_tool_call():
    call = '{"name":"calculator","arguments":{"expression":"457+386"}}'
    assert ex.parse_tool_call(call) == parse_call(call) == ("calculator", {"expression": "457+386"})
    as_string = json.dumps({"name": "calculator", "arguments": json.dumps({"expression": "1+2"})})
    assert ex.parse_tool_call(as_string) == ("calculator", {"expression": "1+2"}), "arguments 是字符串时要再解一次 JSON"
    for bad in ["not json", "[1, 2]", '{"arguments": {}}', '{"name": "calculator", "arguments": [1]}',
                '{"name": "calculator", "arguments": "{broken"}']:
        with pytest.raises(ValueError):
            ex.parse_tool_call(bad)
