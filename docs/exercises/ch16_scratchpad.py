"""第 16 章练习：草稿与只看答案的奖励。检查：pytest docs/exercises -k ch16

对照：studygpt/posttrain/scratchpad.py 的 carry_scratchpad，studygpt/posttrain/tasks.py 的 reward。
"""


def carry_scratchpad(a: int, b: int) -> str:
    """练习 16.1：a + b 的逐位草稿，从个位起，每列写成 `列名x+y+进位=两位的和`，列之间用中文逗号 `，` 隔开。

    列名依次是 个位、十位、百位；进位为 0 也要写 +0，和不满 10 也写两位（08）；和的十位就是下一列的进位。
    carry_scratchpad(457, 386) → '个位7+6+0=13，十位5+8+1=14，百位4+3+1=08'
    两个数的位数不同时，短的那个在高位补 0：carry_scratchpad(95, 7) → '个位5+7+0=12，十位9+0+1=10'
    """
    raise NotImplementedError("练习 16.1：逐位草稿")


def final_answer_reward(a: int, b: int, reply: str) -> float:
    """练习 16.2：只看最后答案的奖励。reply 是模型写出的整段文字，可能以草稿开头：
    `<think>个位7+6+0=13，…</think>457加386等于843。`

    去掉 `<think>…</think>`（没有就不去），剩下的正文必须正好是 `{a}加{b}等于{a+b}。`（前后空白可忽略）才给 1.0，否则 0.0。
    草稿写了什么都不影响分数。没写完的草稿（只有 `<think>` 没有 `</think>`）没有正文，得 0.0。
    """
    raise NotImplementedError("练习 16.2：只看答案的奖励")
