"""第 16 章练习的参考答案。"""

COLUMN_NAMES = ("个位", "十位", "百位", "千位", "万位")


def carry_scratchpad(a: int, b: int) -> str:
    steps, carry = [], 0
    for column in range(max(len(str(a)), len(str(b)))):
        x, y = a // 10 ** column % 10, b // 10 ** column % 10
        total = x + y + carry
        steps.append(f"{COLUMN_NAMES[column]}{x}+{y}+{carry}={total:02d}")
        carry = total // 10
    return "，".join(steps)


def final_answer_reward(a: int, b: int, reply: str) -> float:
    if reply.startswith("<think>"):
        end = reply.find("</think>")
        if end < 0:
            return 0.0
        reply = reply[end + len("</think>"):]
    return float(reply.strip() == f"{a}加{b}等于{a + b}。")
