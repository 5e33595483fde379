"""测试共用：一个真的会打草稿 (<think>)、会调用计算器 (<tool_call>) 的极小模型，存成训练目录 RUN/last。

几道加法题按第 16、17 章的格式写成示范（posttrain/scratchpad.demonstration，"tool" 或 "think"），
用唯一的渲染函数 render_conversation 变成 (ids, labels)，普通的 Adam 循环训练到贪心解码能原样写出每一段为止
（过拟合 (overfit)：背下来就行，这里要的是"模型真的写出调用、程序真的执行它"）。CPU 2 核上十几秒。

用法：在测试文件里

    @pytest.fixture(scope="session")
    def reasoning_run(tmp_path_factory):
        return build_reasoning_run(tmp_path_factory.getbasetemp() / "reasoning")

同一次 pytest 里几个测试文件都这样写时只训练一次：目录已经有 last/ 就直接用。
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from studygpt.generation.tool_use import greedy_replies
from studygpt.model.checkpoint import save_checkpoint
from studygpt.model.transformer import DialogueModel, ModelConfig, lm_loss
from studygpt.posttrain.scratchpad import demonstration
from studygpt.posttrain.tasks import Problem
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX, Reply, render_conversation
from studygpt.tokenizer.specials import EXTRA_TOKENS, PAD
from tests.conftest import DIALOGUES

TOOL_PROBLEMS = [Problem(457, 386), Problem(128, 256), Problem(905, 77)]  # 这几道题调用计算器
THINK_PROBLEMS = [Problem(612, 199), Problem(340, 485)]                  # 这几道题先逐位打草稿
MAX_STEPS, CHECK_EVERY = 1500, 50  # 最多训练多少步；每隔多少步贪心解码检查一次背下来没有


def reasoning_dialogues() -> list[list]:
    """[[问题, Reply], …]：调用计算器的几段，和打草稿的几段。"""
    return ([[p.question, demonstration(p, "tool")] for p in TOOL_PROBLEMS] +
            [[p.question, demonstration(p, "think")] for p in THINK_PROBLEMS])


def reasoning_tokenizer(dialogues: list[list]) -> Tokenizer:
    """字符级词表：先由普通的示范对话建，再追加 5 个思考与工具词元和示范里用到的字（JSON 的 { " 等）。"""
    tokenizer = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
    chars = {ch for turns in dialogues for turn in turns
             for ch in (turn.reasoning + turn.tool_call + turn.tool_result + turn.content
                        if isinstance(turn, Reply) else turn)}
    tokenizer.add_tokens(EXTRA_TOKENS + sorted(chars))
    return tokenizer


def padded_batch(rows: list[tuple[list[int], list[int]]], pad: int) -> dict[str, torch.Tensor]:
    """几段 (ids, labels) 补齐成一批：右边补 <pad>，标签补 -100，attention_mask 标出真的词元。"""
    width = max(len(ids) for ids, _ in rows)
    return {"input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
            "labels": torch.tensor([labels + [IGNORE_INDEX] * (width - len(labels)) for _, labels in rows]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])}


def reproduces(model: DialogueModel, tokenizer: Tokenizer, dialogues: list[list]) -> bool:
    """贪心解码（连同执行工具调用）写出的回答与每段示范的回答完全相同吗？"""
    replies = greedy_replies(model, tokenizer, [d[0] for d in dialogues], max_length=100)
    return replies == [d[1] for d in dialogues]


def train_reasoning_model(tokenizer: Tokenizer, dialogues: list[list], seed: int = 0) -> tuple[DialogueModel, int]:
    """训练到背下全部示范；返回 (model（eval 模式）, 训练了几步)。MAX_STEPS 步还没背下就报错。"""
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=tokenizer.vocab_size, d_model=64, n_head=4, n_layers=2, max_len=128)
    model = DialogueModel(config=config)
    batch = padded_batch([render_conversation(d, tokenizer) for d in dialogues], tokenizer.token_id(PAD))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(1, MAX_STEPS + 1):
        loss, _ = lm_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % CHECK_EVERY == 0 and reproduces(model, tokenizer, dialogues):
            return model.eval(), step
    raise AssertionError(f"{MAX_STEPS} 步后模型还没背下示范（最后的损失 {loss.item():.4f}）")


def build_reasoning_run(run: Path) -> Path:
    """训练并保存到 run/last（已经有了就直接用）；返回 run。"""
    if not (run / "last").is_dir():
        dialogues = reasoning_dialogues()
        tokenizer = reasoning_tokenizer(dialogues)
        model, steps = train_reasoning_model(tokenizer, dialogues)
        save_checkpoint(run / "last", model, tokenizer, extra={"step": steps})
    return run


def tool_messages(turns: list) -> list[dict]:
    """我们的轮次 [用户, 助手（str 或 Reply）, …] → transformers / OpenAI 的消息列表。

    一个带工具调用的 Reply 是三条消息：助手（reasoning_content 与 tool_calls，没有正文）、工具（结果）、助手（正文）；
    只有草稿的 Reply 是一条助手消息（reasoning_content + content）。
    """
    messages: list[dict] = []
    for i, turn in enumerate(turns):
        if i % 2 == 0 or not isinstance(turn, Reply):
            messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": str(turn)})
            continue
        first = {"role": "assistant", "content": "" if turn.tool_call else turn.content}
        if turn.reasoning:
            first["reasoning_content"] = turn.reasoning
        messages.append(first)
        if turn.tool_call:
            first["tool_calls"] = [{"type": "function", "function": json.loads(turn.tool_call)}]
            messages += [{"role": "tool", "content": turn.tool_result}, {"role": "assistant", "content": turn.content}]
    return messages
