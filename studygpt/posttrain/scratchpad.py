"""三种示范 (demonstrations)：同一道 add3 题，模型可以直接答、先打草稿再答、或调用计算器（第 16、17 章）。

    direct   457加386等于多少？ → 457加386等于843。
    think    → <think>个位7+6+0=13，十位5+8+1=14，百位4+3+1=08</think>457加386等于843。
    tool     → <tool_call>{"name":"calculator","arguments":{"expression":"457+386"}}</tool_call>
               <|tool|>843 → 457加386等于843。

直接答为什么难：答案的第一位（百位）取决于个位和十位的进位，一个 2 层的小模型要在"写下第一个字"的那一步里
把整条进位链 (carry chain) 算完。草稿把它拆成每步只做一件小事：一列两个数字加上一个进位。

草稿的每一列写成同样宽的样子（进位 +0 也写，和不满 10 也写两位 08），所以每道题的草稿一样长：
要抄的数字总在固定的距离之外，2 层的注意力很容易学会"往回数几格"。这是为小模型设计格式的一个例子。
"""
from __future__ import annotations

import random

from studygpt.generation.tool_use import format_call
from studygpt.posttrain.tasks import Problem, Task
from studygpt.tokenizer.chat_format import Reply

FORMATS = ("direct", "think", "tool")
COLUMN_NAMES = ("个位", "十位", "百位", "千位", "万位")


def carry_scratchpad(a: int, b: int) -> str:
    """a + b 的逐位草稿：从个位起，每列写 `x+y+进位=两位的和`，和的十位就是下一列的进位。

    carry_scratchpad(457, 386) → '个位7+6+0=13，十位5+8+1=14，百位4+3+1=08'
    """
    width = max(len(str(a)), len(str(b)))
    if width > len(COLUMN_NAMES):
        raise ValueError(f"最多 {len(COLUMN_NAMES)} 位数")
    steps, carry = [], 0
    for column in range(width):
        x, y = a // 10 ** column % 10, b // 10 ** column % 10
        total = x + y + carry
        steps.append(f"{COLUMN_NAMES[column]}{x}+{y}+{carry}={total:02d}")
        carry = total // 10
    return "，".join(steps)


def demonstration(problem: Problem, form: str) -> Reply:
    """一道题按 form（direct / think / tool）写成助手的示范回答。"""
    if form == "direct":
        return Reply(problem.answer)
    if form == "think":
        return Reply(problem.answer, reasoning=carry_scratchpad(problem.a, problem.b))
    if form == "tool":
        symbol = {"加": "+", "减": "-"}[problem.op]
        call = format_call("calculator", {"expression": f"{problem.a}{symbol}{problem.b}"})
        return Reply(problem.answer, tool_call=call, tool_result=str(problem.result))
    raise ValueError(f"未知的示范格式 {form!r}；可选 {FORMATS}")


def demonstrations(task: Task, count: int, form: str, seed: int, sloppy: float = 0.0,
                   sloppy_reply=None) -> list[list]:
    """count 道训练题的示范对话 [[问题, 回答]]。sloppy > 0 时约这个比例换成 sloppy_reply(problem) 的坏示范。"""
    rng = random.Random(seed)
    return [[p.question, sloppy_reply(p) if sloppy and rng.random() < sloppy else demonstration(p, form)]
            for p in task.train_problems(count, seed)]
