"""练习测试的失败信息 (failure messages)：用你在课程里学的说法指出第一个错处，而不是"At index 1 diff"。

    位置 3 的标签应为 -100（这是用户的字"好"，不学），你的是 9
    top_p=0.9 时：编号 4（logit 2.0）应该保留，你的答案把它去掉了（-inf）

每个函数返回一句话；答案正确时返回 None。测试写成 `assert (msg := explain_xxx(...)) is None, msg`。
"""
from __future__ import annotations

import math

IGNORE = -100


def _speakers(ids: list[int], vocab: dict[str, int]) -> list[str]:
    """每个位置属于谁说的话：角色词元本身记作 "role"，之后直到 <|end|>（含）记作 "user" 或 "assistant"。"""
    user, assistant, end = vocab["<|user|>"], vocab["<|assistant|>"], vocab["<|end|>"]
    out, who = [], "user"
    for i in ids:
        if i in (user, assistant):
            who = "user" if i == user else "assistant"
            out.append("role")
            continue
        out.append(who)
        if i == end:
            who = "none"
    return out


def _label_reason(token: str, speaker: str) -> str:
    if speaker == "role":
        return f"这是角色词元 {token}，是我们给的提示，不学"
    if speaker == "assistant":
        return f"这是助手回答结尾的 {token}，要学：模型靠它学会停下" if token == "<|end|>" \
            else f"这是助手回答里的字\"{token}\"，要学"
    return f"这是用户那句结尾的 {token}，不学" if token == "<|end|>" else f"这是用户的字\"{token}\"，不学"


def explain_render(mine, expected, id_to_token: list[str], vocab: dict[str, int]) -> str | None:
    """比较 (ids, labels)：先比长度，再逐个位置比词元、比标签，指出第一个错处和原因。"""
    (my_ids, my_labels), (ids, labels) = mine, expected
    if len(my_ids) != len(ids) or len(my_labels) != len(labels):
        return f"长度不对：应有 {len(ids)} 个词元和 {len(labels)} 个标签，你的是 {len(my_ids)} 个和 {len(my_labels)} 个"
    speakers = _speakers(list(ids), vocab)
    for t, (a, b) in enumerate(zip(my_ids, ids)):
        if a != b:
            return f"位置 {t} 的词元应为 {id_to_token[b]}（编号 {b}），你的是编号 {a}"
    for t, (a, b) in enumerate(zip(my_labels, labels)):
        if a != b:
            return f"位置 {t} 的标签应为 {b}（{_label_reason(id_to_token[ids[t]], speakers[t])}），你的是 {a}"
    return None


def explain_list(mine, expected, what: str) -> str | None:
    """比较两个列表，指出第一个不同的位置，例如"位置 2 的词元应为 …"。what 说明列表里是什么。"""
    mine, expected = list(mine), list(expected)
    for t, (a, b) in enumerate(zip(mine, expected)):
        if a != b:
            return f"位置 {t} 的{what}应为 {b!r}，你的是 {a!r}"
    if len(mine) != len(expected):
        return f"应有 {len(expected)} 个{what}，你的有 {len(mine)} 个"
    return None


def explain_logits(mine, expected, setting: str, logits, why: str = "") -> str | None:
    """比较处理后的 logits（被去掉的是 -inf）：指出第一个该留却去掉、该去掉却留下、或数值不对的编号。

    setting 是这次的设置，例如 "top_p=0.9"；logits 是处理前的原始 logits；why 是数值不对时的提示。
    """
    if tuple(mine.shape) != tuple(expected.shape):
        return f"{setting} 时：形状应为 {tuple(expected.shape)}，你的是 {tuple(mine.shape)}"
    for i, (a, b) in enumerate(zip(mine.tolist(), expected.tolist())):
        raw = f"编号 {i}（原始 logit {float(logits[i]):.1f}）"
        if math.isinf(b) and not math.isinf(a):
            return f"{setting} 时：{raw}应该去掉（设成 -inf），你的答案留下了它（{a:.3f}）"
        if math.isinf(a) and not math.isinf(b):
            return f"{setting} 时：{raw}应该保留（值 {b:.3f}），你的答案把它去掉了（-inf）"
        if not math.isinf(b) and abs(a - b) > 1e-4 * max(1.0, abs(b)):
            return f"{setting} 时：{raw}处理后应为 {b:.4f}，你的是 {a:.4f}{why}"
    return None
