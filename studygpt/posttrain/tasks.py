"""可验证的任务 (verifiable tasks)：答案能被程序精确检查的技能，给强化学习当奖励 (reward)、给偏好数据当裁判。

聊天回答的好坏没有标准答案；算术题有。所以第 14、15 章用一道"能判对错"的题来看偏好微调和强化学习怎样起作用：

- add3：三位数加法 `345加678等于多少？` → `345加678等于1023。`，大多数题要进位 (carries)。
  快速上手的模型只练过两位数，三位数几乎全错；短短一次监督微调 (SFT) 之后对一半左右，正好留下提升的空间。

留出题 (held-out) 由算式本身的哈希决定：{a, b} 这对数的哈希落在留出区间里，a+b 和 b+a 就永远不进训练数据，
也不进强化学习的出题池。与随机数无关，所以任何进程、任何种子得到的划分都相同。
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from studygpt.errors import StudyGPTError

HELDOUT_PERCENT = 10  # 留出约 10% 的数对


OPERATIONS = {"加": lambda a, b: a + b, "减": lambda a, b: a - b}


@dataclass(frozen=True)
class Problem:
    """一道题：两个数和运算（加 / 减）。question 是问题文字，answer 是标准答案。"""
    a: int
    b: int
    op: str = "加"

    @property
    def result(self) -> int:
        return OPERATIONS[self.op](self.a, self.b)

    @property
    def question(self) -> str:
        return f"{self.a}{self.op}{self.b}等于多少？"

    @property
    def answer(self) -> str:
        return f"{self.a}{self.op}{self.b}等于{self.result}。"


ANSWER_PATTERN = re.compile(r"([0-9]+)([加减])([0-9]+)等于(-?[0-9]+)。")  # [0-9] 而不是 \d：\d 还会匹配全角数字


def parse_answer(reply: str) -> tuple[int, str, int, int] | None:
    """从回答里读出 (a, 运算, b, 结果)；格式不对（截断、多字、乱码、空）时返回 None，绝不抛异常。

    要求整句就是 `a加b等于s。`：多出来的字（比如答完又重复一遍）也算格式不对——奖励要教模型答完就停。
    """
    match = ANSWER_PATTERN.fullmatch(reply.strip())
    if match is None:
        return None
    return int(match.group(1)), match.group(2), int(match.group(3)), int(match.group(4))


def reward(problem: Problem, reply: str) -> float:
    """可验证的奖励 (verifiable reward)：1.0 = 抄对了题、算对了结果、格式完整；其余一律 0.0。

    只有 0 和 1：奖励必须查得清清楚楚，模型才钻不了空子 (reward hacking)。
    """
    return float(parse_answer(reply) == (problem.a, problem.op, problem.b, problem.result))


STEP_PATTERN = re.compile(r"[个十百千万]位[0-9]\+[0-9]\+[01]=[0-9]{2}")


def format_reward(problem: Problem, reply) -> float:
    """只看格式的奖励（第 16 章的反面教材）：草稿每一列都写成 `个位x+y+c=两位数` 的样子、
    最后一句是 `a加b等于N。` 并抄对了题，就给 1 分——数字算没算对、草稿和答案对不对得上，都不管。

    模型会钻这个空子 (reward hacking)：随便写几个数字也能拿满分，于是奖励涨到 1，答对的比例却不涨甚至下降。
    只看最后答案的 reward 不怕这个：要拿分，数就得算对。reply 是 chat_format.Reply。
    """
    steps = reply.reasoning.split("，") if reply.reasoning else []
    columns = len(str(max(problem.a, problem.b)))
    parsed = parse_answer(reply.content)
    shaped = len(steps) == columns and all(STEP_PATTERN.fullmatch(s) for s in steps)
    return float(shaped and parsed is not None and parsed[:3] == (problem.a, problem.op, problem.b))


def looping_answer(problem: Problem) -> str:
    """"停不下来"的回答：答对之后又把同一句说一遍。和也对，但整句不是约定的格式，奖励是 0。"""
    return problem.answer * 2


def stable_percent(text: str) -> int:
    """文字 → 0..99 的固定编号（SHA-256 的前 8 位十六进制取模）：与随机种子、进程、机器都无关。"""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 100


def is_heldout(a: int, b: int, op: str = "加") -> bool:
    """这道题是否留出：按运算和无序数对 {a, b} 的哈希决定，所以 a+b 与 b+a 同进同出，且与种子无关。"""
    return stable_percent(f"{op}{min(a, b)},{max(a, b)}") < HELDOUT_PERCENT


@dataclass(frozen=True)
class Task:
    """一个任务：运算 op 与两个数的范围 [low, high]（减法时大数在前，结果不为负）。按固定规则出题。"""
    name: str
    op: str
    low: int
    high: int
    description: str

    def _draw(self, rng: random.Random, heldout: bool) -> Problem:
        while True:  # 拒绝抽样 (rejection sampling)：约 10% 的数对留出，平均抽 1.1 次（留出题平均 10 次）
            a, b = rng.randint(self.low, self.high), rng.randint(self.low, self.high)
            if self.op == "减":
                a, b = max(a, b), min(a, b)
            if is_heldout(a, b, self.op) == heldout:
                return Problem(a, b, self.op)

    def score(self, problem: Problem, reply: str) -> float:
        """这个任务的奖励（默认就是 reward：完全答对 1，其余 0）。"""
        return reward(problem, reply)

    def train_problems(self, count: int, seed: int) -> list[Problem]:
        """count 道训练题（不含任何留出的数对），同一个 seed 结果相同。"""
        rng = random.Random(seed)
        return [self._draw(rng, heldout=False) for _ in range(count)]

    def sample_problem(self, rng: random.Random) -> Problem:
        """强化学习每步出的题：从训练数对里抽（用调用者的随机数生成器，续训时它的状态一起恢复）。"""
        return self._draw(rng, heldout=False)

    def heldout_problems(self, count: int = 200) -> list[Problem]:
        """固定的 count 道不重复的留出题（考试用），与种子无关：每次、每台机器都是同样的题。"""
        rng = random.Random(f"heldout-{self.name}")  # 字符串种子：固定，且与训练用的整数种子互不相干
        problems: dict[tuple[int, int], Problem] = {}
        while len(problems) < count:
            p = self._draw(rng, heldout=True)
            problems.setdefault((p.a, p.b), p)
        return list(problems.values())


TASKS = {
    "add3": Task("add3", "加", 100, 999, "三位数加法 (3-digit addition, mostly with carries)"),
    "sub2": Task("sub2", "减", 10, 99, "两位数减法 (2-digit subtraction, about half with borrows)"),
}


def get_task(name: str) -> Task:
    """按名字取任务；不认识时一句话说明有哪些。"""
    if name not in TASKS:
        choices = ", ".join(f"{t.name}（{t.description}）" for t in TASKS.values())
        raise StudyGPTError(f"未知的任务 (unknown task) {name!r}；可选：{choices}。")
    return TASKS[name]


def accuracy(problems: list[Problem], replies: list[str]) -> float:
    """完全答对的比例 (exact-match accuracy)。"""
    return sum(reward(p, r) for p, r in zip(problems, replies, strict=True)) / max(len(problems), 1)
