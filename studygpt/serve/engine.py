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
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from studygpt.generation.generate import GenerationSettings
from studygpt.model.transformer import DialogueModel
from studygpt.serve.batcher import Batcher, Finish, Piece, StopBuffer
from studygpt.serve.schemas import ApiError
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import fit_prompt, prompt_budget, render_prompt

__all__ = ["Engine", "Finish", "Generation", "Job", "Piece", "StopBuffer"]

log = logging.getLogger("studygpt.serve.app")


@dataclass
class Job:
    """工人要做的一次生成：提示的编号、生成设置（采样、最多几个新词元、种子）、每步附带几个候选、stop 字符串。"""
    prompt_ids: list[int]
    settings: GenerationSettings
    top_n: int = 0
    stops: list[str] = field(default_factory=list)


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
    """持有模型与分词器；make_job 把请求变成 Job，submit 交给连续批处理的工人线程 (batcher.Batcher)。
    stats() 给出计数（/health 里能看到）。max_batch：最多几个请求一起解码；1 就是一个接一个。"""

    def __init__(self, model: DialogueModel, tokenizer: Tokenizer, max_batch: int = 16) -> None:
        if getattr(model, "compiled_decoder", None) is not None:
            log.warning("服务器一批一起解码，不走 --compile 编译的批大小 1 内核 (the compiled decoder is not used)")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batcher = Batcher(model, tokenizer, max_batch)

    # ===== 1. 请求 → Job =====
    def make_job(self, history: list[str], user_text: str, settings: GenerationSettings, top_n: int,
                 stops: list[str]) -> Job:
        """把对话放进上下文窗口 (context window)，给回答留出 min(settings.max_length, max_len/2) 个位置。

        放不下时从最早的一问一答丢起（和 `studygpt chat` 一样）；最后这句用户的话本身就放不下时，
        返回 400 context_length_exceeded，而不是悄悄截掉用户的话。
        """
        max_len = self.model.config.max_len
        budget = prompt_budget(max_len, settings.max_length)
        alone = len(render_prompt([], user_text, self.tokenizer))
        if alone > budget:
            raise ApiError(400, f"最后一条用户消息有 {alone} 个词元，模型的上下文 (context) 只有 {max_len} 个，"
                           f"还要给回答留 {max_len - budget} 个；请缩短消息或减小 max_tokens。",
                           "messages", "context_length_exceeded")
        prompt = fit_prompt(self.tokenizer, history, user_text, budget)
        top_n = min(top_n, self.tokenizer.vocab_size)
        return Job(prompt, settings, top_n, stops)

    # ===== 2. 排队、计数、关闭 =====
    def submit(self, job: Job) -> Generation:
        """把 job 交给批处理器，立刻返回；结果从返回的 Generation 里 `async for` 读。须在事件循环里调用。"""
        gen = Generation(asyncio.get_running_loop())
        self.batcher.submit(job, gen)
        return gen

    def stats(self) -> dict:
        """计数：见 Batcher.stats。"""
        return self.batcher.stats()

    def close(self) -> None:
        """服务器退出：取消所有排队与进行中的生成，不再接新任务。"""
        self.batcher.close()
