"""生成引擎 (engine)：一个工人线程 (worker thread) + 一条先来先服务的队列 (FIFO queue)。

为什么这样设计：
- 模型在 CPU 上一次只算一个请求最快，也最简单：不会有两个请求同时改同一个 KV 缓存。
  所以所有生成都交给**同一个**工人线程，按到达顺序一个接一个做（ThreadPoolExecutor(max_workers=1)
  的任务队列就是先进先出的）。每个请求用自己的随机数生成器 (torch.Generator + seed)，
  所以并发时每条回答都和它单独请求时一模一样。
- 生成放在线程里，网络那一侧（asyncio 事件循环）就不会被卡住：排队时、生成时都能接新请求、发数据。
- 工人每算出一个词元就通过 `loop.call_soon_threadsafe` 交给事件循环；客户端断开时，事件循环一侧
  调用 `Generation.cancel()`，工人在下一个词元之前看到标志就停下（排队中的请求则直接跳过）。

stop 字符串在这里处理（StopBuffer）：回答在第一次出现 stop 的地方截断，不含 stop 本身。
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Sequence

from studygpt.chat_format import render_prompt
from studygpt.generate import GenerationSettings, Step, fit_prompt, generate_tokens, prompt_budget
from studygpt.model import DialogueModel
from studygpt.serve.schemas import ApiError
from studygpt.tokenizer import END, Tokenizer

log = logging.getLogger("studygpt.serve")


@dataclass
class Job:
    """工人要做的一次生成：提示的编号、生成设置（采样、最多几个新词元、种子）、每步附带几个候选、stop 字符串。"""
    prompt_ids: list[int]
    settings: GenerationSettings
    top_n: int = 0
    stops: list[str] = field(default_factory=list)


@dataclass
class Piece:
    """回答里一段看得见的文字 (text)，和产生它的那一步 (step：概率与候选)。"""
    text: str
    step: Step


@dataclass
class Finish:
    """生成结束。reason: "stop"（<|end|> 或 stop 字符串）/ "length"（到了词元上限）/ "cancelled"。
    completion_tokens 数的是模型真正算出的每个词元，包括结尾的 <|end|> 和被 stop 截掉的部分。"""
    reason: str
    prompt_tokens: int
    completion_tokens: int


class StopBuffer:
    """把一个个 Piece 按 stop 字符串截断。

    流式输出时不能把"可能是 stop 开头"的文字先发出去：例如 stop="再见"，刚生成"再"时先扣住，
    下一个字是"见"就截断（两个都不发），不是就连同"再"一起发。扣住的总是"最长的、是某个 stop
    开头的结尾"，所以以后出现的 stop 一定从扣住的部分开始，已经发出去的文字永远不用收回。
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending: list[Piece] = []

    def push(self, piece: Piece) -> tuple[list[Piece], bool]:
        """加入一段；返回 (现在可以发出的片段, 是否遇到了 stop)。遇到 stop 后就不要再 push 了。"""
        self.pending.append(piece)
        text = "".join(p.text for p in self.pending)
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if hits:
            return self._take(min(hits), cut=True), True
        hold = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        return self._take(len(text) - hold, cut=False), False

    def flush(self) -> list[Piece]:
        """生成结束了：扣住的文字不会再变成 stop，全部发出。"""
        return self._take(sum(len(p.text) for p in self.pending), cut=False)

    def _take(self, n_chars: int, cut: bool) -> list[Piece]:
        """取出前 n_chars 个字符所在的完整片段；cut=True 时最后一个跨界的片段只保留界内的部分。"""
        out = []
        while self.pending and len(self.pending[0].text) <= n_chars:
            n_chars -= len(self.pending[0].text)
            out.append(self.pending.pop(0))
        if cut and self.pending and n_chars > 0:
            out.append(Piece(self.pending[0].text[:n_chars], self.pending[0].step))
        return out


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
    """持有模型与分词器，按先来先服务的顺序一次做一个生成。stats() 给出计数（/health 里能看到）。"""

    def __init__(self, model: DialogueModel, tokenizer: Tokenizer) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.end_id = tokenizer.token_id(END)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studygpt-generate")
        self._lock = threading.Lock()  # 只保护计数器；模型只有工人线程碰
        self._counts: Counter = Counter()
        self._active: set[Generation] = set()

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

    # ===== 2. 排队与取消 =====
    def submit(self, job: Job) -> Generation:
        """把 job 排进队列，立刻返回；结果从返回的 Generation 里 `async for` 读。须在事件循环里调用。"""
        gen = Generation(asyncio.get_running_loop())
        with self._lock:
            self._counts["submitted"] += 1
            self._active.add(gen)
        self._executor.submit(self._run, job, gen)
        return gen

    def stats(self) -> dict:
        """submitted / started / finished / cancelled / failed 次数，tokens 总数，waiting 排队数。"""
        with self._lock:
            c = dict(self._counts)
        keys = ("submitted", "started", "finished", "cancelled", "failed", "tokens")
        out = {k: c.get(k, 0) for k in keys}
        out["waiting"] = out["submitted"] - out["started"]
        return out

    def close(self) -> None:
        """服务器退出：取消所有排队与进行中的生成，不再接新任务。"""
        with self._lock:
            for gen in self._active:
                gen.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ===== 3. 工人线程：真正的生成 =====
    def _run(self, job: Job, gen: Generation) -> None:
        with self._lock:
            self._counts["started"] += 1
        n_tokens, reason = 0, "cancelled"
        try:
            if not gen.cancelled.is_set():  # 排队时客户端就走了：跳过
                n_tokens, reason = self._generate(job, gen)
            gen.emit(Finish(reason, len(job.prompt_ids), n_tokens))
        except Exception as exc:  # 程序错误：记日志，交给事件循环一侧变成 500
            reason = "failed"
            log.exception("生成出错 (generation failed)")
            gen.emit(exc)
        finally:
            with self._lock:
                self._counts["finished" if reason in ("stop", "length") else reason] += 1
                self._counts["tokens"] += n_tokens
                self._active.discard(gen)
        if reason == "cancelled":
            log.info("生成被取消 (cancelled): 已生成 %d 个词元后停止，客户端已断开", n_tokens)

    def _generate(self, job: Job, gen: Generation) -> tuple[int, str]:
        """逐词生成并交出 Piece；返回 (算出的词元数, 结束原因)。每个词元之前检查是否被取消。"""
        stops = StopBuffer(job.stops)
        n_tokens = 0
        s = job.settings
        steps = generate_tokens(self.model, job.prompt_ids, s.max_length, s.sampling, self.tokenizer, s.seed, job.top_n)
        with closing(steps):  # 提前 break 时也立刻关闭生成器（它会把模型恢复原状）
            for step in steps:
                if gen.cancelled.is_set():
                    return n_tokens, "cancelled"
                n_tokens += 1
                if step.token_id == self.end_id:
                    reason = "stop"
                    break
                if not step.visible:
                    continue
                ready, hit = stops.push(Piece(step.text, step))
                for piece in ready:
                    gen.emit(piece)
                if hit:
                    return n_tokens, "stop"
            else:
                reason = "length"  # 没遇到 <|end|>：到了 max_new_tokens 或上下文满了
        for piece in stops.flush():
            gen.emit(piece)
        return n_tokens, reason
