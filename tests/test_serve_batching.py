"""连续批处理 (continuous batching) 的测试：一批一起解码时，每个请求的词元与它单独来时逐个相同。

1. decode_rows：每行有自己的位置，结果与完整前向 (full forward) 相同（数值上接近）；
2. batch_floor：行数 ≥ M0 时，一行的 logits 与同批的别人是谁、有几个、自己在第几行都无关（逐位相同）；
3. 真的启动服务器：16 个流式客户端随机时间到达，各有各的采样设置、种子、stop 与 max_tokens，
   其中几个中途断开；没断开的每个回答（文字、每步的概率、finish_reason、usage）都与它单独请求时相同。
"""
import random
import threading
import time

import httpx
import openai
import pytest
import torch

from studygpt.generation.batch_decode import SlotCache, decode_rows
from studygpt.generation.generate import prefill
from studygpt.model.transformer import KVCache
from studygpt.serve.app import ServeSettings, create_app, serve_in_background
from studygpt.serve.batcher import batch_floor, one_thread
from tests.conftest import tiny_model
from tests.test_serve import never_ending_model

MAX_BATCH = 16


@pytest.fixture
def model(tokenizer):
    return tiny_model(tokenizer.vocab_size, d_model=64, n_layers=2, max_len=96).eval()


def test_decode_rows_equals_full_forward_with_per_row_positions(model):
    torch.manual_seed(0)
    prompts = [torch.randint(model.config.vocab_size, (n,)).tolist() for n in (3, 11, 7)]
    cache = SlotCache(model, 4)
    for row, ids in enumerate(prompts):
        single = KVCache(model.config, 1, "cpu", torch.float32)
        prefill(model, ids, single)
        cache.load(row, single)
    nxt = [5, 9, 2]
    logits = decode_rows(model, torch.tensor(nxt), torch.tensor([len(p) for p in prompts]), cache)
    with torch.no_grad():
        for row, ids in enumerate(prompts):
            full = model(torch.tensor([ids + [nxt[row]]]))[0, -1]
            torch.testing.assert_close(logits[row], full, atol=1e-5, rtol=1e-5)


def test_rows_are_bitwise_independent_of_batch_mates_above_the_floor(model):
    cache = SlotCache(model, MAX_BATCH)
    floor = batch_floor(model, cache, MAX_BATCH)
    assert 1 <= floor <= MAX_BATCH
    rng = random.Random(0)
    g = torch.Generator().manual_seed(1)
    V, L = model.config.vocab_size, model.config.max_len
    mine_k = [torch.randn(cache.k[0][0].shape, generator=g) for _ in cache.k]
    mine_v = [torch.randn(cache.v[0][0].shape, generator=g) for _ in cache.v]

    def my_logits(m: int, row: int) -> torch.Tensor:
        """我的一行（词元 7、位置 40、我的缓存）放在第 row 行，别的行随机。"""
        for t in cache.k + cache.v:
            t.copy_(torch.randn(t.shape, generator=g))
        for t, mine in zip(cache.k + cache.v, mine_k + mine_v):
            t[row] = mine
        tokens = torch.randint(V, (m,), generator=g)
        positions = torch.randint(L, (m,), generator=g)
        tokens[row], positions[row] = 7, 40
        with one_thread():  # 服务器解码时就是这样（见 batcher.one_thread）
            return decode_rows(model, tokens, positions, cache)[row]

    reference = my_logits(floor, 0)
    for _ in range(12):
        m = rng.randint(floor, MAX_BATCH)
        assert torch.equal(my_logits(m, rng.randrange(m)), reference)
    if floor > 1:  # 这台机器上的矩阵乘法库在行数少时换了内核：少一行就会差在最后几位——这就是为什么要有下限
        assert not torch.equal(my_logits(floor - 1, 0), reference)


# ===== 真的服务器：16 个客户端，随机到达，几个中途断开 =====
def one_stream(url: str, body: dict, hang_up_after: int | None = None, delay: float = 0.0) -> dict:
    """发一个流式请求；返回文字、每步的对数概率、finish_reason、usage。hang_up_after=k：读 k 块就断开。"""
    time.sleep(delay)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
    stream = client.chat.completions.create(model="tiny", stream=True, logprobs=True, top_logprobs=2,
                                            stream_options={"include_usage": True}, **body)
    text, logprobs, finish, usage = "", [], None, None
    for n, chunk in enumerate(stream):
        if hang_up_after is not None and n >= hang_up_after:
            stream.close()
            break
        if chunk.usage:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            if choice.logprobs and choice.logprobs.content:
                logprobs += [(t.token, t.logprob, [c.logprob for c in t.top_logprobs]) for t in choice.logprobs.content]
    return {"text": text, "logprobs": logprobs, "finish": finish, "usage": usage}


def random_requests(tokenizer, n: int, rng: random.Random) -> list[dict]:
    """每个请求自己的采样设置、种子、stop 与 max_tokens。"""
    chars = [c for c in tokenizer.id_to_token if len(c) == 1]
    bodies = []
    for i in range(n):
        body = {"messages": [{"role": "user", "content": "".join(rng.choices(chars, k=rng.randint(1, 12)))}],
                "seed": rng.randrange(10**6), "max_tokens": rng.randint(8, 60),
                "temperature": rng.choice([0, 0.7, 1.0, 1.3])}
        extra = {}
        if rng.random() < 0.4:
            extra["top_k"] = rng.randint(2, 30)
        if rng.random() < 0.4:
            body["top_p"] = rng.choice([0.5, 0.9])
        if rng.random() < 0.3:
            extra["repetition_penalty"] = 1.2
        if rng.random() < 0.3:
            body["stop"] = rng.sample(chars, 2)
        body["extra_body"] = extra
        bodies.append(body)
    return bodies


def test_sixteen_streaming_clients_get_exactly_their_solo_tokens(tokenizer):
    model = never_ending_model(tokenizer)  # 贪心时从不停：断开的请求一定还在生成
    app = create_app(model, tokenizer, ServeSettings(model_id="tiny", max_tokens_cap=200, max_batch=MAX_BATCH))
    rng = random.Random(19)
    bodies = random_requests(tokenizer, 16, rng)
    hang_ups = {3: 2, 8: 5, 13: 1}  # 第几个请求读几块就断开
    for i in hang_ups:
        bodies[i].update(temperature=0, max_tokens=200)
    with serve_in_background(app) as url:
        alone = [one_stream(url, b) for b in bodies]  # 一个一个来：批里只有自己
        before = httpx.get(f"{url}/health").json()["generations"]
        results: dict[int, dict] = {}

        def client(i: int) -> None:
            results[i] = one_stream(url, bodies[i], hang_ups.get(i), delay=rng_delays[i])

        rng_delays = [rng.uniform(0, 0.4) for _ in bodies]
        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        deadline = time.time() + 10
        while (after := httpx.get(f"{url}/health").json()["generations"])["running"] and time.time() < deadline:
            time.sleep(0.05)
    assert sorted(results) == list(range(16))
    for i, solo in enumerate(alone):
        together = results[i]
        if i in hang_ups:
            assert solo["text"].startswith(together["text"]) and together["finish"] is None
        else:
            assert together == solo, f"请求 {i} 在批里与单独时不同"
    assert after["cancelled"] - before["cancelled"] == len(hang_ups)  # 断开的请求离开了批
    assert after["running"] == 0 and after["waiting"] == 0
    assert after["peak_batch"] >= 4  # 真的有好几个请求一起解码
    assert len({r["text"] for r in alone}) > 10


def test_max_batch_flag_is_checked_and_one_means_one_at_a_time(tokenizer, tmp_path):
    from studygpt.cli.parser import main
    from studygpt.errors import StudyGPTError
    from studygpt.model.checkpoint import save_checkpoint
    with pytest.raises(StudyGPTError, match="max-batch"):
        ServeSettings(max_batch=0)
    checkpoint = save_checkpoint(tmp_path / "tiny", tiny_model(tokenizer.vocab_size), tokenizer)
    with pytest.raises(SystemExit) as exit_info:  # 解析参数时就拦下（cli/parser.py 的 COUNT）：一行错误，不是 traceback
        main(["serve", str(checkpoint), "--max-batch", "0"])
    assert exit_info.value.code == 2
    app = create_app(never_ending_model(tokenizer), tokenizer, ServeSettings(max_batch=1))
    with serve_in_background(app) as url:
        bodies = [{"messages": [{"role": "user", "content": "你好"}], "seed": s, "max_tokens": 20, "temperature": 1.0}
                  for s in range(4)]
        threads = [threading.Thread(target=one_stream, args=(url, b)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        stats = httpx.get(f"{url}/health").json()["generations"]
    assert stats["peak_batch"] == 1 and stats["finished"] == 4


def test_bpe_model_streams_whole_characters_as_plain_text(tmp_path):
    """字节级 BPE：批处理器发出的每一段都是完整的字（半个汉字先扣住），拼起来就是整段回答的解码。
    曾经的错误：发出的是词元的字节写法（`id_to_token`），流式文字是乱码。"""
    import asyncio

    from studygpt.generation.generate import GenerationSettings, SamplingConfig
    from studygpt.model.checkpoint import load_model
    from studygpt.serve.engine import Engine, Finish
    from studygpt.tokenizer.bpe import BPETokenizer
    from tests.export_helpers import train_tiny_run
    from tests.test_bpe_tokenizer import TEXTS

    model, bpe, _ = load_model(train_tiny_run(tmp_path / "run", tokenizer=BPETokenizer.train(TEXTS, vocab_size=400)))
    engine = Engine(model, bpe, max_batch=4)

    async def run() -> tuple[list[str], list[int]]:
        settings = GenerationSettings(SamplingConfig(temperature=0), max_length=40, seed=3)
        gen = engine.submit(engine.make_job([], "你是谁？", settings, 0, []))
        texts, ids = [], []
        async for item in gen:
            if not isinstance(item, Finish):
                texts.append(item.text)
                ids.append(item.step.token_id)
        return texts, ids

    try:
        texts, ids = asyncio.run(run())
    finally:
        engine.close()
    reply = bpe.decode(ids)
    assert any(len(bpe.decode([i])) != 1 for i in ids)  # 回答里确实有不止一个字的词元（或半个字的词元）
    assert "".join(texts) == reply and "\ufffd" not in reply and reply.startswith("我是")
