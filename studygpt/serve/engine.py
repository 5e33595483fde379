"""生成引擎 (engine)：网络一侧（asyncio 事件循环）与生成一侧（一个工人线程）之间的交接。

为什么这样设计：
- 所有生成都交给**同一个**工人线程（batcher.py 的连续批处理 (continuous batching)）：同时在生成的请求
  叠成一批，一步解码给每个请求各出一个词元；新请求随时加入，做完的、客户端断开的随时离开。
  每个请求用自己的随机数生成器 (torch.Generator + seed)，每步的计算也与同批的是谁无关（batcher.py 说明怎样做到），
  所以并发时每条回答都和它单独请求时一模一样。
- 生成放在线程里，网络那一侧就不会被卡住：排队时、生成时都能接新请求、发数据。
- 工人每算出一个词元就通过 `loop.call_soon_threadsafe` 交给事件循环；客户端断开时，事件循环一侧
  调用 `Generation.cancel()`，工人在下一步之前看到标志，这个请求就离开批（排队中的请求则直接跳过）。

stop 字符串的截断（StopBuffer）、交出的 Piece 与 Finish 在 batcher.py 里，这里也能导入。
一次回答可能分两轮：模型先写工具调用，服务器执行后再写正文（Answer，第 3 节）。
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import AsyncIterator, Sequence

from studygpt.errors import StudyGPTError
from studygpt.generation.generate import GenerationSettings, prompt_budget
from studygpt.generation.tool_use import run_tool
from studygpt.model.transformer import DialogueModel
from studygpt.serve.batcher import Batcher, Finish, Piece, StopBuffer
from studygpt.serve.messages import ToolUse
from studygpt.serve.schemas import ApiError
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import (
    Reply,
    Turn,
    fit_prompt,
    render_prompt,
    reply_prefix,
)
from studygpt.tokenizer.specials import ASSISTANT

__all__ = ["Answer", "Engine", "Finish", "Generation", "Job", "Piece", "StopBuffer", "ToolUse"]

log = logging.getLogger("studygpt.serve.app")


@dataclass
class Job:
    """工人要做的一次生成：提示的编号、生成设置（采样、最多几个新词元、种子）、每步附带几个候选、stop 字符串。
    client_tools：客户端会执行的工具名（请求里的 tools）；may_call_tool：模型写出的工具调用要不要处理
    （提示里已经有这次回答的工具结果时为 False：一次回答最多一次调用）。"""
    prompt_ids: list[int]
    settings: GenerationSettings
    top_n: int = 0
    stops: list[str] = field(default_factory=list)
    client_tools: frozenset[str] = frozenset()
    may_call_tool: bool = True


class Generation:
    """一次排队中或进行中的生成：事件循环一侧 `async for` 读出 Piece……最后一个是 Finish。"""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue = asyncio.Queue()
        self._done = False
        self.cancelled = threading.Event()

    def emit(self, item) -> None:
        """工人线程调用：把一项交给事件循环（线程安全）。"""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # 事件循环已经关闭（服务器在退出），没人再读了
            self.cancelled.set()

    def cancel(self) -> None:
        """不再需要结果（客户端断开、请求结束）：工人在下一个词元前停下。可以重复调用。"""
        self.cancelled.set()

    def __aiter__(self) -> "Generation":
        return self

    async def __anext__(self) -> Piece | Finish:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, BaseException):  # 工人线程里出的错，在这里重新抛出
            self._done = True
            raise item
        self._done = isinstance(item, Finish)
        return item


class Engine:
    """持有模型与分词器；make_job 把请求变成 Job，answer 把它变成一次回答（可能分两轮，见 Answer），
    submit 把一轮交给连续批处理的工人线程 (batcher.Batcher)。stats() 给出计数（/health 里能看到）。
    max_batch：最多几个请求一起解码；1 就是一个接一个。"""

    def __init__(self, model: DialogueModel, tokenizer: Tokenizer, max_batch: int = 16) -> None:
        if getattr(model, "compiled_decoder", None) is not None:
            log.warning("服务器一批一起解码，不走 --compile 编译的批大小 1 内核 (the compiled decoder is not used)")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batcher = Batcher(model, tokenizer, max_batch)

    # ===== 1. 请求 → Job =====
    def make_job(self, history: Sequence[Turn], user_text: str, settings: GenerationSettings, top_n: int,
                 stops: list[str], pending: Reply | None = None, client_tools: frozenset[str] = frozenset()) -> Job:
        """把对话放进上下文窗口 (context window)，给回答留出 min(settings.max_length, max_len/2) 个位置。

        放不下时从最早的一问一答丢起（和 `studygpt chat` 一样）；最后这句用户的话（连同 pending：这次回答
        已经有的工具调用与结果）本身就放不下时，返回 400 context_length_exceeded，而不是悄悄截掉。
        对话里有工具调用或草稿、模型却没学过这些词元 (<tool_call>…) 时也是 400。
        """
        budget = prompt_budget(self.model.config.max_len, settings.max_length)
        try:
            prompt = self._fit(history, user_text, pending, budget)
        except StudyGPTError as err:  # 词表里没有 <tool_call> 这类词元：一句话说明，不是 500
            raise ApiError(400, str(err), "messages") from err
        top_n = min(top_n, self.tokenizer.vocab_size)
        return Job(prompt, settings, top_n, stops, client_tools, may_call_tool=pending is None)

    def _fit(self, history: Sequence[Turn], user_text: str, pending: Reply | None, budget: int) -> list[int]:
        """提示 = fit_prompt 的历史 + 用户的话，结尾的 <|assistant|> 换成 pending 的 reply_prefix（没有 pending 时不变）。"""
        tokenizer, max_len = self.tokenizer, self.model.config.max_len
        prefix = reply_prefix(pending, tokenizer) if pending else [tokenizer.token_id(ASSISTANT)]
        alone = len(render_prompt([], user_text, tokenizer)) - 1 + len(prefix)
        if alone > budget:
            raise ApiError(400, f"最后一条用户消息{'连同工具调用与结果' if pending else ''}有 {alone} 个词元，"
                           f"模型的上下文 (context) 只有 {max_len} 个，还要给回答留 {max_len - budget} 个；"
                           "请缩短消息或减小 max_tokens。", "messages", "context_length_exceeded")
        return fit_prompt(tokenizer, history, user_text, budget - len(prefix) + 1)[:-1] + prefix

    # ===== 2. 排队、计数、关闭 =====
    def answer(self, job: Job) -> Answer:
        """一次回答（可能先调用一次工具）：`async for` 读出 Piece、ToolUse 与 Finish。须在事件循环里调用。"""
        return Answer(self, job)

    def submit(self, job: Job) -> Generation:
        """把一轮生成交给批处理器，立刻返回；结果从返回的 Generation 里 `async for` 读。须在事件循环里调用。"""
        gen = Generation(asyncio.get_running_loop())
        self.batcher.submit(job, gen)
        return gen

    def stats(self) -> dict:
        """计数：见 Batcher.stats（一轮生成算一次：服务器自己执行工具的回答算两次）。"""
        return self.batcher.stats()

    def close(self) -> None:
        """服务器退出：取消所有排队与进行中的生成，不再接新任务。"""
        self.batcher.close()


# ===== 3. 一次回答：可能先调用一次工具 =====
@dataclass
class Round:
    """一轮生成里除了交出去的片段以外要记下的：草稿与工具调用的文字、结束。"""
    reasoning: str = ""
    call: str = ""
    finish: Finish | None = None


class Answer:
    """一次回答，可能分两轮生成（OpenAI 的函数调用流程见 messages.py）。`async for` 读出
    Piece（正文或草稿）……、ToolUse（模型调用了工具）、最后一个 Finish。

    第 1 轮照常生成。模型写了工具调用（<tool_call>…</tool_call><|end|>）时：
    - 请求的 tools 里有这个工具 → 交给客户端：发出 ToolUse（output 为 None），以 finish_reason="tool_calls" 结束。
      客户端执行工具，把结果作为 role=tool 的消息再发一个请求，模型从结果之后接着写（Conversation.pending）。
    - 否则服务器自己执行（run_tool：内置的安全计算器；不认识的工具、写坏的参数只得到一条 `错误：…` 结果）→
      发出带 output 的 ToolUse，把结果接在提示后面，第 2 轮作为新的 Job 走同一个批处理器，写出正文。
    一次回答最多执行一次工具：第 2 轮（或提示里已有工具结果时）模型再写的调用不执行、不发出。
    usage 把两轮加起来（两轮的提示都完整算过一遍）；max_tokens 是两轮合计的上限。
    """

    def __init__(self, engine: Engine, job: Job) -> None:
        self.engine, self.job = engine, job
        self.current: Generation | None = None
        self.cancelled = False

    def cancel(self) -> None:
        """不再需要结果：停下正在进行的一轮，也不再开始下一轮。可以重复调用。"""
        self.cancelled = True
        if self.current is not None:
            self.current.cancel()

    def __aiter__(self) -> AsyncIterator[Piece | ToolUse | Finish]:
        return self._rounds()

    async def _rounds(self) -> AsyncIterator[Piece | ToolUse | Finish]:
        first = Round()
        async for piece in self._run(self.job, first):
            yield piece
        if not (first.call and first.finish.reason == "stop" and self.job.may_call_tool):
            yield first.finish
            return
        use = ToolUse.from_model(first.call)
        if use.name in self.job.client_tools:  # 客户端的工具：交给客户端执行
            yield use
            yield Finish("tool_calls", first.finish.prompt_tokens, first.finish.completion_tokens)
            return
        use.output = run_tool(first.call)  # 服务器自己执行，接着写第 2 轮
        yield use
        job = self._second_job(first, use.output)
        second = Round(finish=Finish("length", 0, 0))  # job 为 None：两轮合计的 max_tokens 在第 1 轮已用完，不再生成
        if job is not None:
            async for piece in self._run(job, second):
                yield piece
        yield Finish(second.finish.reason, first.finish.prompt_tokens + second.finish.prompt_tokens,
                     first.finish.completion_tokens + second.finish.completion_tokens)

    async def _run(self, job: Job, record: Round) -> AsyncIterator[Piece]:
        """一轮生成：正文与草稿的片段交出去；工具调用的文字、草稿全文和 Finish 记进 record。"""
        self.current = self.engine.submit(job)
        if self.cancelled:
            self.current.cancel()
        async for item in self.current:
            if isinstance(item, Finish):
                record.finish = item
            elif item.channel == "tool_call":
                record.call += item.text
            else:
                if item.channel == "reasoning":
                    record.reasoning += item.text
                yield item

    def _second_job(self, first: Round, output: str) -> Job | None:
        """第 2 轮：原来的提示，结尾的 <|assistant|> 换成"已经有的部分"（草稿、调用、结果，reply_prefix），
        模型接着写正文。max_tokens 已在第 1 轮用完时返回 None。"""
        job = self.job
        left = job.settings.max_length - first.finish.completion_tokens
        if left < 1:
            return None
        pending = Reply("", first.reasoning, first.call, output)
        prompt = job.prompt_ids[:-1] + reply_prefix(pending, self.engine.tokenizer)
        return Job(prompt, replace(job.settings, max_length=left), job.top_n, job.stops, may_call_tool=False)
