"""连续批处理 (continuous batching)：正在生成的所有请求一起走每一步解码，新请求随时加入，做完的随时离开。

为什么一批 16 个和 1 个差不多贵：逐词解码时每一步都要把全部权重从内存读一遍（study 预设约 72 MB），
而每个请求只贡献一行向量。读一遍权重之后乘 1 行还是乘 16 行，时间远不到 16 倍（GPU 上几乎一样）——
瓶颈是读内存 (memory-bound)，不是算力（实测见 docs/performance.md）。所以把同时在生成的请求叠成一批 (B, 1)，
一步就给每个请求各出一个词元。

一步的样子（工人线程 (worker thread) 里的循环，Batcher._loop）：
    1. 接新请求 (admit)：单独 prefill 它的提示（批大小 1，和它单独来时一样），k/v 抄进 KV 缓存里空着的一行；
    2. 客户端已断开的行立刻离开 (leave)；
    3. 所有行一起解码一个词元（batch_decode.decode_rows，只用一个线程）：每行有自己的位置和自己能看的键；
    4. 每行按自己的采样设置、自己的随机数生成器选下一个词元 (generate.choose，和单独生成是同一个函数)，
       遇到 <|end|>、stop 字符串或词元上限就离开，空出的行马上给排队的请求用。

"和单独来时一模一样"怎么保证：矩阵乘法库 (BLAS) 对不同的行数 M 会换用不同的内核，求和顺序不同，
结果在最后几位上不同；抽样时几乎打平的两个词元就可能因此换一个。我们实测（解码用一个线程，见 one_thread）：同一个 M 里，一行的结果
与别的行是什么、它在第几行都无关；只是 M 变了才会变。所以 batch_floor 在启动时测出一个行数下限 M0：
从 M0 到 max_batch 的每个 M，同一行算出的 logits 逐位相同。每步至少算 M0 行（不够就补空行），
单独一个请求也一样——于是一个请求的每个词元与它同批的是谁、有几个都无关。注意力总是看整个
max_len 长的缓存（看不到的位置被掩码成权重 0），求和的长度也就与同批的别人无关。

形状记号：B 批大小 (batch，这里是正在生成的行数) · C 通道 (d_model) · nh 头数 · hs 每头维度 · L max_len · V 词表大小
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence

import torch

from studygpt.generation.batch_decode import SlotCache, decode_rows
from studygpt.generation.generate import ReplyText, Step, choose, prefill
from studygpt.model.kv_cache import KVCache
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import SEGMENT_AFTER
from studygpt.tokenizer.specials import CONTROL_TOKENS, END

log = logging.getLogger("studygpt.serve.app")


# ===== 0. 生成交出的东西：文字片段、结束，以及按 stop 字符串截断 =====
@dataclass
class Piece:
    """回答里一段看得见的文字 (text)，和产生它的那一步 (step：概率与候选)。
    channel：它属于哪一段——"content" 正文、"reasoning" 草稿（<think> 里）、"tool_call" 工具调用（<tool_call> 里）。"""
    text: str
    step: Step
    channel: str = "content"


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


# ===== 1. 一个线程，批的下限 =====
@contextmanager
def one_thread():
    """解码这一步只用一个线程。两个线程时矩阵乘法库把行分给两个线程，后一半的行走另一条求和路径，
    同一行放在第 3 行和第 13 行算出的数在最后几位就不同（2 核机器上实测）；一个线程时只有行数 M 有影响，
    batch_floor 测得出来。解码一步是读内存为主，一个线程也只慢一点。"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def batch_floor(model: DialogueModel, cache: SlotCache, max_batch: int) -> int:
    """测出最小的行数 M0：M0 ≤ M ≤ max_batch 时，同一行（同一词元、同一位置、同样的缓存）算出的 logits 逐位相同。

    从 max_batch 往下试，第一次不同就停。结果取决于机器和矩阵乘法库（我们的 AVX2 + MKL 上是 4），
    所以启动时测，不写死。用随机的词元和位置，让每行的数都不一样；测完缓存里的数没用，以后会被覆盖。
    """
    g = torch.Generator().manual_seed(0)
    device = cache.k[0].device
    tokens = torch.randint(model.config.vocab_size, (max_batch,), generator=g).to(device)
    positions = torch.randint(model.config.max_len, (max_batch,), generator=g).to(device)
    for t in cache.k + cache.v:
        t.copy_(torch.randn(t.shape, generator=g).to(t))
    with one_thread():
        reference = decode_rows(model, tokens, positions, cache)
        floor = max_batch
        for m in range(max_batch - 1, 0, -1):
            if not torch.equal(decode_rows(model, tokens[:m], positions[:m], cache), reference[:m]):
                break
            floor = m
    return floor


# ===== 2. 一个正在生成的请求 =====
@dataclass
class Row:
    """一个请求在批里的状态：它的 job 与 Generation、自己的随机数生成器、已写出的回答、下一个要喂的词元。"""
    job: object            # engine.Job
    gen: object            # engine.Generation
    stops: object          # engine.StopBuffer
    generator: torch.Generator | None
    budget: int            # 最多生成几个词元（不超过上下文剩下的位置）
    text: ReplyText        # 编号 → 逐段文字（BPE 的半个汉字先扣住，等下一个词元补全）
    reply: list[int] = field(default_factory=list)
    n_tokens: int = 0
    token: int = -1        # 刚选出的词元：下一步喂给模型
    channel: str = "content"  # 现在写到哪一段：<think> 之后是草稿，</think> 之后回到正文（chat_format.SEGMENT_AFTER）

    @property
    def position(self) -> int:
        """刚选出的词元要放在第几个位置：提示占 0..P-1，第 k 个新词元在 P+k-1。"""
        return len(self.job.prompt_ids) + self.n_tokens - 1


# ===== 3. 工人线程：接请求、一起解码、发出词元 =====
class Batcher:
    """持有模型与一个 SlotCache；一个工人线程循环地接请求、解码一步、把每行的词元交给它的 Generation。"""

    def __init__(self, model: DialogueModel, tokenizer: Tokenizer, max_batch: int = 16):
        self.model, self.tokenizer, self.max_batch = model.eval(), tokenizer, max_batch
        self.end_id = tokenizer.token_id(END)
        self.cache = SlotCache(model, max_batch)
        self.floor = batch_floor(model, self.cache, max_batch)
        self.rows: list[Row] = []
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()  # 只保护计数器；模型与缓存只有工人线程碰
        self._counts: Counter = Counter()
        self._thread = threading.Thread(target=self._loop, name="studygpt-batcher", daemon=True)
        self._thread.start()

    def submit(self, job, gen) -> None:
        with self._lock:
            self._counts["submitted"] += 1
        self._queue.put((job, gen))

    def stats(self) -> dict:
        """submitted / started / finished / cancelled / failed 次数，tokens 总数，waiting 排队数，running 正在生成数，
        peak_batch 一步里最多同时解码了几个请求。"""
        with self._lock:
            c = dict(self._counts)
        keys = ("submitted", "started", "finished", "cancelled", "failed", "tokens", "peak_batch")
        out = {k: c.get(k, 0) for k in keys}
        out["waiting"] = out["submitted"] - out["started"]
        out["running"] = out["started"] - out["finished"] - out["cancelled"] - out["failed"]
        return out

    def close(self) -> None:
        """服务器退出：让工人线程停下；排队和进行中的请求都被取消。"""
        self._queue.put(None)

    def _count(self, **amounts) -> None:
        with self._lock:
            self._counts.update(amounts)

    # ----- 循环 -----
    def _loop(self) -> None:
        while True:
            try:
                if not self._admit(block=not self.rows):
                    break
                self._leave_if_cancelled()
                if self.rows:
                    self._step()
            except Exception as exc:  # 程序错误：记日志，批里每个请求都收到它（事件循环一侧变成 500）
                log.exception("生成出错 (generation failed)")
                for row in self.rows:
                    row.gen.emit(exc)
                self._count(failed=len(self.rows))
                self.rows = []
        for row in self.rows:
            self._finish(row, "cancelled")
        self.rows = []

    def _admit(self, block: bool) -> bool:
        """有空行就接排队的请求（批空着时等着）；收到 close 的信号返回 False。"""
        while len(self.rows) < self.max_batch:
            try:
                item = self._queue.get(block=block)
            except queue.Empty:
                return True
            if item is None:
                return False
            block = False
            self._start(*item)
        return True

    def _start(self, job, gen) -> None:
        """单独 prefill 这个请求（批大小 1，和它单独来时一样），抄进第 n 行，选出第一个词元。"""
        self._count(started=1)
        if gen.cancelled.is_set():  # 排队时客户端就走了：跳过
            gen.emit(Finish("cancelled", len(job.prompt_ids), 0))
            self._count(cancelled=1)
            return
        s, config = job.settings, self.model.config
        generator = None
        if s.seed is not None:
            generator = torch.Generator(device=self.cache.k[0].device)
            generator.manual_seed(s.seed)
        row = Row(job, gen, StopBuffer(job.stops), generator, min(s.max_length, config.max_len - len(job.prompt_ids)),
                  ReplyText(self.tokenizer))
        if row.budget <= 0:
            self._finish(row, "length")
            return
        single = KVCache(config, 1, self.cache.k[0].device, self.cache.k[0].dtype)
        try:
            logits = prefill(self.model, job.prompt_ids, single)
        except Exception as exc:  # 程序错误只让这个请求失败（还没进批），批里的别人照常
            log.exception("prefill 出错 (prefill failed)")
            gen.emit(exc)
            self._count(failed=1)
            return
        self.cache.load(len(self.rows), single)
        self.rows.append(row)
        self._accept(len(self.rows) - 1, logits)

    def _step(self) -> None:
        """所有行一起解码一个词元（不足 M0 行时补上空行：位置 0、词元 0，结果不用），每行选下一个词元。"""
        n = len(self.rows)
        with self._lock:
            self._counts["peak_batch"] = max(self._counts["peak_batch"], n)
        padded = max(n, self.floor)
        tokens = [r.token for r in self.rows] + [0] * (padded - n)
        positions = [r.position for r in self.rows] + [0] * (padded - n)
        device = self.cache.k[0].device
        with one_thread():
            logits = decode_rows(self.model, torch.tensor(tokens, device=device),
                                 torch.tensor(positions, device=device), self.cache)
        for i in reversed(range(n)):  # 倒着走：离开的行由最后一行填上，而最后一行这一步已经处理过
            self._accept(i, logits[i])

    def _accept(self, i: int, logits: torch.Tensor) -> None:
        """第 i 行拿到下一个位置的 logits (V,)：选词元、发出去；结束了就离开批。"""
        row = self.rows[i]
        token, probs = choose(logits, row.job.settings.sampling, row.reply, row.generator)
        reason = self._emit(row, token, probs)
        if reason is None:
            row.reply.append(token)
            row.token = token
            return
        self._finish(row, reason)
        self._remove(i)

    def _emit(self, row: Row, token: int, probs: torch.Tensor) -> str | None:
        """发出一个词元（stop 字符串可能先扣住它）；返回结束原因，或 None 表示继续。
        stop 字符串只截正文：草稿与工具调用的文字直接发出，由 engine.Answer 分拣。"""
        row.n_tokens += 1
        if token == self.end_id:
            return "stop"
        name = self.tokenizer.id_to_token[token]
        row.channel = SEGMENT_AFTER.get(name, row.channel)
        text = name if name in CONTROL_TOKENS else row.text.push(token)  # 与 generate.stream_tokens 同一个规则
        top = []
        if row.job.top_n:
            p, idx = probs.topk(row.job.top_n)
            top = [(self.tokenizer.id_to_token[j], float(q)) for q, j in zip(p.tolist(), idx.tolist())]
        step = Step(token, text, float(probs[token]), top)
        if step.visible and row.channel != "content":
            row.gen.emit(Piece(text, step, row.channel))
        elif step.visible:
            ready, hit = row.stops.push(Piece(text, step))
            for piece in ready:
                row.gen.emit(piece)
            if hit:
                row.stops = StopBuffer([])  # 截断后扣住的部分不再发出
                return "stop"
        return "length" if row.n_tokens >= row.budget else None

    def _leave_if_cancelled(self) -> None:
        """客户端已断开的行立刻离开，不再为它多算一个词元。"""
        for i in reversed(range(len(self.rows))):
            if self.rows[i].gen.cancelled.is_set():
                self._finish(self.rows[i], "cancelled")
                self._remove(i)

    def _remove(self, i: int) -> None:
        """第 i 行离开：最后一行（连同它的缓存）搬进来填上，正在生成的请求总是占着前 n 行。"""
        last = len(self.rows) - 1
        if i != last:
            self.cache.move(last, i)
            self.rows[i] = self.rows[last]
        self.rows.pop()

    def _finish(self, row: Row, reason: str) -> None:
        """发出扣住的文字与 Finish，记账。"""
        if reason != "cancelled":
            for piece in row.stops.flush():
                row.gen.emit(piece)
        row.gen.emit(Finish(reason, len(row.job.prompt_ids), row.n_tokens))
        self._count(**{"finished" if reason in ("stop", "length") else reason: 1}, tokens=row.n_tokens)
        if reason == "cancelled":
            log.info("生成被取消 (cancelled): 已生成 %d 个词元后停止，客户端已断开", row.n_tokens)
