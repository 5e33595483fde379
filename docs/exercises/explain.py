"""练习测试的失败信息 (failure messages)：用你在课程里学的说法指出第一个错处，而不是"At index 1 diff"。

    位置 3 的标签应为 -100（这是用户的字"好"，不学），你的是 9
    top_p=0.9 时：编号 4（logit 2.0）应该保留，你的答案把它去掉了（-inf）
    样本 0、头 0、位置 1 的输出应为 [0.120, …]，你的是 [0.310, …]；看起来忘了除以 √hs（缩放 scale）……

每个函数返回一句话；答案正确时返回 None。测试写成 `assert (msg := explain_xxx(...)) is None, msg`。
第 4–7 章的张量答案：对不对仍由 torch.testing.assert_close 的标准决定；不对时才去找第一个错处，
再把你的答案和几种常见错误算出来的结果比一比，认出来就说"看起来……"。
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

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


# ===== 第 4–7 章的公共工具：判对错、找第一个错处、认出常见错误 =====
def _same(mine, expected, rtol=None, atol=None) -> bool:
    """和 torch.testing.assert_close 用同一个标准（形状、数据类型、容差）：答案算不算对只由它决定。"""
    try:
        torch.testing.assert_close(mine, expected, rtol=rtol, atol=atol)
    except (AssertionError, TypeError, ValueError):
        return False
    return True


def _shape_problem(mine, expected, what: str) -> str | None:
    """不是张量、形状不对、数据类型不对时返回那句话；都对返回 None。"""
    if not isinstance(mine, torch.Tensor):
        return f"{what}应是张量 (torch.Tensor)，你的是 {type(mine).__name__}"
    if mine.shape != expected.shape:
        return f"{what}的形状应为 {tuple(expected.shape)}，你的是 {tuple(mine.shape)}"
    if mine.dtype != expected.dtype:
        return f"{what}的数据类型 (dtype) 应为 {expected.dtype}，你的是 {mine.dtype}"
    return None


def _first_wrong(mine, expected, rtol=None, atol=None) -> tuple[int, ...]:
    """第一个超出容差的下标（float32 的默认容差与 assert_close 相同：rtol=1.3e-6, atol=1e-5）。"""
    close = torch.isclose(mine.detach(), expected.detach(), rtol=1.3e-6 if rtol is None else rtol,
                          atol=1e-5 if atol is None else atol)
    wrong = (~close).nonzero()
    return tuple(wrong[0].tolist()) if len(wrong) else (0,) * mine.dim()


def _diagnose(mine, mistakes: dict[str, torch.Tensor]) -> str:
    """mistakes = {提示: 犯这个错时算出的答案}。你的答案和哪一个几乎一样，就返回"；看起来……"那句提示。"""
    mine = torch.as_tensor(mine).detach().float()
    for hint, wrong in mistakes.items():
        wrong = torch.as_tensor(wrong).detach().float()
        if wrong.shape == mine.shape and torch.allclose(mine, wrong, rtol=1e-5, atol=1e-6, equal_nan=True):
            return "；看起来" + hint
    return ""


def _wrong_value(mine, expected, names: str, rtol=None, atol=None) -> str:
    """"样本 0、位置 3、第 5 维应为 0.1234，你的是 0.5678"：names 给每一维起名字，如 "样本 {}、位置 {}、第 {} 维"。"""
    where = _first_wrong(mine, expected, rtol, atol)
    right, yours = float(expected.detach()[where]), float(mine.detach()[where])
    digits = 4 if f"{right:.4f}" != f"{yours:.4f}" else 8  # 差别很小时多写几位，让人看得出不同
    return f"{names.format(*where)}应为 {right:.{digits}f}，你的是 {yours:.{digits}f}"


def _values(vector) -> str:
    """一个向量的前 3 个数，如 [0.120, -0.310, 0.050, …]。"""
    shown = ", ".join(f"{float(v):.3f}" for v in vector[:3])
    return f"[{shown}{', …' if len(vector) > 3 else ''}]"


# ===== 第 4 章：RoPE =====
def explain_rope_table(mine, expected, name: str, head_size: int, base: float) -> str | None:
    """比较 cos 或 sin 表 (max_len, hs/2)：指出第一个错的 (位置 t, 第 i 对)，并认出指数、符号、cos/sin 写错。"""
    if _same(mine, expected):
        return None
    T, half = expected.shape
    if isinstance(mine, torch.Tensor) and tuple(mine.shape) == (T, 2 * half):
        return (f"{name} 表的形状应为 {(T, half)}（每个位置、每对维度一个角），你的是 {tuple(mine.shape)}：StudyGPT 用 "
                f"rotate-half 写法，前一半和后一半的第 i 维共用第 i 对的角，表里只存 hs/2 列，不用重复")
    if problem := _shape_problem(mine, expected, f"{name} 表"):
        return problem
    t, i = torch.arange(T, dtype=torch.float32)[:, None], torch.arange(half, dtype=torch.float32)
    angle = t * base ** (-2 * i / head_size)
    func, other = (torch.cos, torch.sin) if name == "cos" else (torch.sin, torch.cos)
    hint = _diagnose(mine, {
        "指数少了 2：第 i 对的频率是 base^(−2i/hs)，不是 base^(−i/hs)": func(t * base ** (-i / head_size)),
        "指数少了负号：频率是 1 / base^(2i/hs)，越往后的维度转得越慢": func(t * base ** (2 * i / head_size)),
        f"算成了 {'sin' if name == 'cos' else 'cos'}：cos 和 sin 弄反了": other(angle),
    })
    p, k = _first_wrong(mine, expected)
    return (f"{name} 表在位置 t={p}、第 i={k} 对应为 {name}({p} · {base:g}^(−2·{k}/{head_size})) = "
            f"{float(expected[p, k]):.4f}，你的是 {float(mine[p, k]):.4f}（角 = t · base^(−2i/hs)）{hint}")


def explain_rotation(mine, x, cos, sin, expected) -> str | None:
    """比较旋转后的 x (B, nh, T, hs)：认出转反方向、相邻两维配对 (interleaved)，并指出长度是否变了。"""
    if _same(mine, expected):
        return None
    if problem := _shape_problem(mine, expected, "旋转后的 x "):
        return problem
    x1, x2 = x.chunk(2, dim=-1)
    even, odd = x[..., 0::2], x[..., 1::2]  # 相邻两维配对：(x[0], x[1])、(x[2], x[3]) ……
    hint = _diagnose(mine, {
        "转反了方向（sin 的符号反了）：应是 (x1·cos − x2·sin, x1·sin + x2·cos)": torch.cat(
            [x1 * cos + x2 * sin, -x1 * sin + x2 * cos], dim=-1),
        "把相邻两维 (x[2i], x[2i+1]) 配成了一对；StudyGPT 用 rotate-half 写法：前一半 x1 与后一半 x2 配对": torch.stack(
            [even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2),
    })
    if not hint and not _same(mine.norm(dim=-1), x.norm(dim=-1)):
        hint = "；而且向量的长度 (norm) 变了：旋转只转方向，不该改变长度"
    return _wrong_value(mine, expected, "样本 {}、头 {}、位置 t={}、第 {} 维旋转后") + hint


def explain_length(mine, x) -> str | None:
    """旋转前后每个向量的长度 (norm) 应该一样。"""
    lengths, expected = mine.norm(dim=-1), x.norm(dim=-1)
    if _same(lengths, expected):
        return None
    where = _first_wrong(lengths, expected)
    return (f"旋转不该改变长度 (norm)：位置 t={where[-1]} 的向量长度应为 {float(expected[where]):.4f}，"
            f"你的是 {float(lengths[where]):.4f}")


def explain_same_scores(scores: list[float], distance: int) -> str | None:
    """scores[m − distance] 是位置 m 的 q 与位置 m − distance 的 k 的分数：RoPE 下它们应该都一样。"""
    if max(scores) - min(scores) < 1e-4:
        return None
    low, high = scores.index(min(scores)), scores.index(max(scores))
    return (f"相距 {distance} 的分数 q·k 应该都一样（RoPE 只看距离，不看绝对位置），你的从 (位置 {low + distance}, "
            f"{low}) 的 {scores[low]:.4f} 变到 (位置 {high + distance}, {high}) 的 {scores[high]:.4f}")


# ===== 第 5 章：注意力 =====
def explain_causal_mask(mine, expected) -> str | None:
    """比较因果掩码 (T, T)：True 表示位置 i 能看位置 j。指出第一个错的 (i, j)，认出上三角、漏了对角线、真假反了。"""
    if isinstance(mine, torch.Tensor) and torch.equal(mine, expected):
        return None
    if not isinstance(mine, torch.Tensor) or mine.shape != expected.shape:
        return f"掩码的形状应为 {tuple(expected.shape)}，你的是 {tuple(getattr(mine, 'shape', ()))}"
    mine = mine.bool()
    hint = _diagnose(mine, {
        "用了上三角 (triu)：每个位置只能看自己和过去 (j ≤ i)，不是未来": expected.T,
        "漏了对角线：位置 i 也能看它自己 (j = i)": expected.tril(-1),
        "你把 True 和 False 弄反了：True 表示\"能看\"": ~expected,
    })
    i, j = _first_wrong(mine.float(), expected.float())
    if expected[i, j]:
        return f"位置 {i} 能看位置 {j}（只能看 j ≤ i，{j} ≤ {i}），你的答案不让它看{hint}"
    return f"位置 {i} 不能看位置 {j}（只能看 j ≤ i，{j} 是它的未来），你的答案让它看了{hint}"


def _attention(q, k, v, scale: float, causal: bool = True, dim: int = -1, fill: float = float("-inf")):
    """手写注意力的几种写法（对的和常见错的），用来认出你犯了哪一种错。"""
    scores = q @ k.transpose(-2, -1) * scale                               # (B, nh, T, T)
    if causal:
        T = q.shape[-2]
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), fill)
    return scores.softmax(dim=dim) @ v                                     # (B, nh, T, hs)


def explain_attention(mine, q, k, v, expected) -> str | None:
    """比较注意力输出 (B, nh, T, hs)：认出忘了缩放、忘了掩码、softmax 做错维度、掩码填 0；否则指出第一个错的 (b, h, t)。"""
    if _same(mine, expected):
        return None
    if problem := _shape_problem(mine, expected, "输出 (B, nh, T, hs) "):
        return problem
    scale = 1 / math.sqrt(q.shape[-1])
    hint = _diagnose(mine, {
        "忘了除以 √hs（缩放 scale）：分数太大，softmax 变得太尖": _attention(q, k, v, 1.0),
        "忘了因果掩码 (causal mask)：位置 t 看到了它后面的词元": _attention(q, k, v, scale, causal=False),
        "忘了除以 √hs，也忘了因果掩码": _attention(q, k, v, 1.0, causal=False),
        "你把 softmax 做在了 dim=-2 上：应在最后一维做，让位置 i 对它能看的各个 j 的权重加起来是 1": _attention(q, k, v, scale, dim=-2),
        "你把 softmax 做在了 nh 个头之间 (dim=1)：应在最后一维（各个 j）上做": _attention(q, k, v, scale, dim=1),
        "你把 softmax 做在了 B 个样本之间 (dim=0)：注意力要在同一个样本的词元之间做——原项目就错在这里": _attention(
            q, k, v, scale, dim=0),
        "掩码位置填了 0：应填 −∞，填 0 的话 exp(0) = 1，未来仍然分到权重": _attention(q, k, v, scale, fill=0.0),
    })
    b, h, t, _ = _first_wrong(mine, expected)
    return (f"样本 {b}、头 {h}、位置 {t} 的输出应为 {_values(expected[b, h, t])}，你的是 "
            f"{_values(mine[b, h, t])}{hint}")


def explain_leak(attention: Callable, q, before: tuple, after: tuple, unchanged: int) -> str | None:
    """before = (k, v)，after = 改了未来（位置 ≥ unchanged）和样本 1 的 (k2, v2)。
    样本 0 在位置 0 … unchanged−1 的输出应该一点都不变；变了就再试一次只改未来，说出是哪一种泄漏。"""
    out, out2 = attention(q, *before), attention(q, *after)
    if _same(out2[0, :, :unchanged], out[0, :, :unchanged]):
        return None
    h, t, _ = _first_wrong(out2[0, :, :unchanged], out[0, :, :unchanged])
    future_only = [x.clone() for x in before]
    for x, changed in zip(future_only, after):
        x[0] = changed[0]  # 样本 0 的未来照样改，样本 1 不改
    if _same(attention(q, *future_only)[0, :, :unchanged], out[0, :, :unchanged]):
        why = "它看到了样本 1：注意力要在同一个样本的 T 个词元之间做，不能跨 B 个样本"
    else:
        why = f"它看到了未来（位置 {unchanged} 以后）：位置 i 只能看 j ≤ i"
    return f"改了未来和样本 1 之后，样本 0 头 {h} 位置 {t} 的输出变了（应该一点都不变）：{why}"


# ===== 第 6 章：Transformer 块 =====
def explain_rms_norm(mine, x, weight, eps: float, expected) -> str | None:
    """比较 RMSNorm 的输出 (B, T, C)：认出减了均值 (LayerNorm)、忘了 weight、用了平方和、没开方、忘了 eps。"""
    if _same(mine, expected):
        return None
    if problem := _shape_problem(mine, expected, "RMSNorm 输出"):
        return problem
    mean_square = x.pow(2).mean(dim=-1, keepdim=True)
    hint = _diagnose(mine, {
        "减了均值：那是 LayerNorm；RMSNorm 只除以均方根 sqrt(mean(x²) + eps)，不减均值": F.layer_norm(
            x, x.shape[-1:], weight, None, eps),
        "忘了逐维乘以 weight": x * torch.rsqrt(mean_square + eps),
        "用了平方和 sum(x²)：应是平方的平均 mean(x²)": x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight,
        "忘了开方：除以的是 sqrt(mean(x²) + eps)": x / (mean_square + eps) * weight,
        "忘了加 eps（差别很小，但 x 全为 0 时会除以 0）": x * torch.rsqrt(mean_square) * weight,
    })
    return _wrong_value(mine, expected, "样本 {}、位置 {}、第 {} 维") + hint


def explain_swiglu(mine, x, w1, w3, w2, expected) -> str | None:
    """比较 SwiGLU 的输出 (B, T, C)：认出 w1/w3 弄反、门用了 ReLU/GELU/sigmoid、忘了乘上投影。"""
    if _same(mine, expected):
        return None
    if problem := _shape_problem(mine, expected, "SwiGLU 输出"):
        return problem
    gate, up = x @ w1.T, x @ w3.T
    hint = _diagnose(mine, {
        "你把 w1 和 w3 弄反了：silu 作用在门 (gate) x @ w1ᵀ 上，不是 x @ w3ᵀ": (F.silu(up) * gate) @ w2.T,
        "门用了 ReLU：SwiGLU 的门用 SiLU，silu(z) = z · sigmoid(z)": (F.relu(gate) * up) @ w2.T,
        "门用了 GELU：SwiGLU 的门用 SiLU，silu(z) = z · sigmoid(z)": (F.gelu(gate) * up) @ w2.T,
        "门用了 sigmoid：SiLU 还要再乘一次 z，silu(z) = z · sigmoid(z)": (torch.sigmoid(gate) * up) @ w2.T,
        "忘了乘上投影 (up) x @ w3ᵀ：SwiGLU 是 silu(门) ⊙ 上投影": F.silu(gate) @ w2.T,
    })
    return _wrong_value(mine, expected, "样本 {}、位置 {}、第 {} 维") + hint


def explain_block(mine, expected, x, layers: list[tuple[Callable, Callable]]) -> str | None:
    """比较整个块的输出：layers 是依次的 (norm, sublayer)。认出后置归一化、残差加了归一化后的 x、忘了残差。"""
    if _same(mine, expected):
        return None
    if problem := _shape_problem(mine, expected, "块输出"):
        return problem

    def block_with(residual: Callable):
        h = x
        for norm, sublayer in layers:
            h = residual(h, norm, sublayer)
        return h

    hint = _diagnose(mine, {
        "用了后置归一化 (post-norm) norm(x + sublayer(x))；StudyGPT 用前置归一化：x + sublayer(norm(x))":
            block_with(lambda h, norm, sub: norm(h + sub(h))),
        "残差加的是归一化后的 x：应加回原来的 x，即 x + sublayer(norm(x))，不是 norm(x) + sublayer(norm(x))":
            block_with(lambda h, norm, sub: norm(h) + sub(norm(h))),
        "忘了残差 (residual)：子层的输出要加回原来的 x": block_with(lambda h, norm, sub: sub(norm(h))),
        "忘了先归一化：应是 x + sublayer(norm(x))": block_with(lambda h, norm, sub: h + sub(h)),
    })
    return _wrong_value(mine, expected, "样本 {}、位置 {}、第 {} 维") + hint


# ===== 第 7 章：训练循环的零件 =====
def _cosine(t: float, lr: float, floor: float) -> float:
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def explain_lr(mine, expected: float, progress: float, lr: float, warmup: float, min_ratio: float) -> str | None:
    """比较某个进度的学习率（相对误差 1e-5 以内算对）：说出这时在预热还是下降阶段，认出忘了下限等错误。"""
    try:
        mine = float(mine)
    except (TypeError, ValueError):
        return f"进度 progress={progress} 时应返回一个数 (float)，你的返回了 {type(mine).__name__}"
    if abs(mine - expected) <= max(1e-5 * abs(expected), 1e-12):
        return None
    t = (progress - warmup) / (1 - warmup)
    if progress < warmup:
        phase = "这时在预热阶段 (warm-up)：lr · progress / warmup，从 0 线性升到 lr"
        mistakes = {"忘了除以 warmup：预热结束 (progress = warmup) 时应正好升到 lr": lr * progress,
                    "没有预热：一开始就按余弦下降了": _cosine(t, lr, min_ratio * lr)}
    else:
        phase = f"这时在余弦下降阶段 (cosine decay)：t = (progress − warmup)/(1 − warmup) = {t:.3f}"
        mistakes = {
            f"忘了下限 floor = min_ratio · lr = {min_ratio * lr:g}：学习率降到它为止，不是 0": _cosine(t, lr, 0.0),
            f"下限应为 min_ratio · lr = {min_ratio * lr:g}，不是 min_ratio 本身": _cosine(t, lr, min_ratio),
            "你的 t 直接用了 progress：t 要从预热结束时算起，t = (progress − warmup)/(1 − warmup)":
                _cosine(progress, lr, min_ratio * lr),
        }
    hint = _diagnose(mine, mistakes)
    return f"进度 progress={progress} 时学习率应为 {expected:.6g}，你的是 {mine:.6g}（{phase}）{hint}"


def explain_clip(mine: list, expected: list, grads: list, max_norm: float, rtol=None, atol=None) -> str | None:
    """逐个比较裁剪后的梯度：说出总长度、该不该裁、共同的比例；认出每个张量分别裁剪、没裁、不该裁却裁了。"""
    total = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    for n, (a, b) in enumerate(zip(mine, expected)):
        if _same(a, b, rtol, atol):
            continue
        if problem := _shape_problem(a, b, f"第 {n} 个梯度"):
            return problem
        index = ", ".join(["{}"] * b.dim())
        place = index if b.dim() == 1 else f"({index})"  # 每一维一个 {}："{}" 或 "({}, {})"
        wrong = _wrong_value(a, b, f"第 {n} 个梯度在位置 {place} ", rtol, atol)
        if total <= max_norm:
            return f"总长度 {total:.3f} 没超过 max_norm={max_norm}，应原样返回（不变）：{wrong}"
        per_tensor = [g * min(1.0, max_norm / float(g.norm())) for g in grads]
        hint = _diagnose(a, {
            "把每个张量分别裁剪了：要把所有梯度拼成一个长向量，用它的总长度 (global norm) 算出同一个比例":
                per_tensor[n],
            "没有裁剪：总长度超过了 max_norm": grads[n],
        })
        return (f"{wrong}（总长度 {total:.3f} > max_norm={max_norm}，所有梯度都乘以同一个比例 "
                f"max_norm / 总长度 = {max_norm / total:.4f}）{hint}")
    return None


def explain_accumulation(weights, counts: list[int], accumulated: list, full: list, rtol=None, atol=None) -> str | None:
    """累加的梯度应等于整批的梯度；不等时说出应有的权重 count_i / sum(counts)，认出平均分、没除以总数。"""
    if all(_same(a, b, rtol, atol) for a, b in zip(accumulated, full)):
        return None
    expected = [n / sum(counts) for n in counts]
    weights = [float(w) for w in weights]
    hint = _diagnose(weights, {
        f"每个小批次都乘 1/{len(counts)}：只有每批被学习的词元一样多时才对；词元多的小批次分量应更重":
            [1 / len(counts)] * len(counts),
        "忘了除以总数 sum(counts)：权重加起来应是 1": counts,
    })
    shown = ", ".join(f"{w:.3f}" for w in expected)
    mine = ", ".join(f"{w:.3f}" for w in weights)
    return (f"累加的梯度和整批的梯度不一样：被学习的词元数 counts = {counts} 时，权重应为 count_i / sum(counts) = "
            f"[{shown}]，你的是 [{mine}]{hint}")
