"""服务 (serve) 的端到端测试：真的启动 uvicorn，用官方 `openai` 客户端和真的浏览器 (Playwright + chromium) 来用它。

模型是一个极小的随机模型，存成检查点再加载（和 `studygpt serve runs/NAME` 走同一条路）。
为了能测"到上限才停"和"客户端断开"，把它改成贪心 (temperature=0) 时永远不会写 <|end|>，见 never_ending_model。

截图：`STUDYGPT_SCREENSHOT=docs/serve_screenshot.png python -m pytest tests/test_serve.py -k browser`
会把网页（带回答、打开"看看里面"）存成 PNG；再加 `STUDYGPT_SCREENSHOT_RUN=runs/NAME` 就用训练好的模型。
"""
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
import torch

from studygpt.generation.generate import Step
from studygpt.model.checkpoint import load_model, save_checkpoint
from studygpt.serve.app import ServeSettings, create_app, serve_in_background
from studygpt.serve.engine import Piece, StopBuffer
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import render_prompt
from studygpt.tokenizer.specials import END, SPECIAL_TOKENS
from tests.conftest import DIALOGUES, tiny_model

API_KEY = "test-key"
CAP = 200  # 服务器的 max_tokens 上限
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def never_ending_model(tokenizer: Tokenizer):
    """贪心时只写普通字、从不写 <|end|> 的小模型。输出层与嵌入共享 (tied)：<|end|> 那一行清零，它的 logit
    恒为 0；让两个普通字的行互为相反数，两者中总有一个 logit > 0，所以贪心永远选不到 <|end|>；
    其余特殊词元的行缩小 100 倍，logit 接近 0，也赢不了普通字。
    抽样 (temperature=1) 时 <|end|> 仍有约 1/词表大小 的概率，不同种子给出不同的回答。"""
    model = tiny_model(tokenizer.vocab_size, n_layers=1, max_len=512)
    a, b = tokenizer.encode("你好")
    with torch.no_grad():
        weight = model.tok_embeddings.weight
        weight[[tokenizer.token_id(t) for t in SPECIAL_TOKENS]] *= 0.01
        weight[tokenizer.token_id(END)] = 0
        weight[b] = -weight[a]
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tokenizer = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
    return save_checkpoint(tmp_path_factory.mktemp("serve") / "tiny", never_ending_model(tokenizer), tokenizer)


@pytest.fixture(scope="module")
def server(checkpoint):
    """带 API key 的服务器；yield (根地址, 分词器)。"""
    model, tokenizer, _ = load_model(checkpoint)
    app = create_app(model, tokenizer, ServeSettings(model_id="tiny", max_tokens_cap=CAP, api_key=API_KEY))
    with serve_in_background(app) as url:
        yield url, tokenizer


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key=API_KEY, max_retries=0, timeout=60)


def chat(client, text="你好", **kw):
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": text}], **kw)


def streamed(client, text="你好", **kw) -> tuple[str, list]:
    chunks = list(chat(client, text, stream=True, **kw))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def health(url) -> dict:
    return httpx.get(f"{url}/health").json()["generations"]


# ===== 1. 基本用法 =====
def test_plain_completion_ignores_system_and_counts_tokens(server, client):
    _, tokenizer = server
    reply = client.chat.completions.create(model="anything", max_tokens=20, seed=1, temperature=1.0, messages=[
        {"role": "system", "content": "你是一个乐于助人的助手。"}, {"role": "user", "content": "你好"}])
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == "tiny"
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    # system 消息被忽略：提示就是只有"你好"的那一轮
    assert reply.usage.prompt_tokens == len(render_prompt([], "你好", tokenizer))
    assert 1 <= reply.usage.completion_tokens <= 20
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_history_goes_into_the_prompt(server, client):
    _, tokenizer = server
    reply = client.chat.completions.create(model="tiny", max_tokens=5, messages=[
        {"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"},
        {"role": "user", "content": [{"type": "text", "text": "你是谁？"}]}])
    assert reply.usage.prompt_tokens == len(render_prompt(["你好", "你好！"], "你是谁？", tokenizer))


def test_same_seed_same_text_and_stream_equals_plain(client):
    settings = dict(seed=3, temperature=1.0, max_tokens=30, extra_body={"top_k": 20, "repetition_penalty": 1.1})
    plain = chat(client, **settings)
    assert chat(client, **settings).choices[0].message.content == plain.choices[0].message.content
    assert len({chat(client, seed=s, temperature=1.0, max_tokens=30).choices[0].message.content
                for s in range(4)}) > 1
    text, chunks = streamed(client, stream_options={"include_usage": True}, **settings)
    assert text == plain.choices[0].message.content
    assert chunks[0].object == "chat.completion.chunk" and chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == plain.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage


def test_logprobs_give_top_candidates_per_step(client):
    reply = chat(client, temperature=0, max_tokens=12, logprobs=True, top_logprobs=5)
    content = reply.choices[0].logprobs.content
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for entry in content:
        probs = [c.logprob for c in entry.top_logprobs]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True)
        assert entry.top_logprobs[0].token == entry.token  # 贪心：选中的就是第一名
        assert sum(torch.tensor(probs).exp()) <= 1 + 1e-6


def test_max_tokens_is_capped_and_finish_reason_is_length(client):
    reply = chat(client, temperature=0, max_tokens=10_000)
    assert reply.usage.completion_tokens == CAP and reply.choices[0].finish_reason == "length"


def test_stop_string_cuts_reply_in_plain_and_stream(client):
    settings = dict(seed=5, temperature=1.0, max_tokens=40)
    full = chat(client, **settings).choices[0].message.content
    k = next(i for i in range(3, len(full)) if full[i] not in full[:i])  # 第一次出现在 k 处的字
    for stop in (full[k], [full[k:k + 2], "不会出现的字符串"]):
        reply = chat(client, stop=stop, **settings)
        assert reply.choices[0].message.content == full[:k] and reply.choices[0].finish_reason == "stop"
        assert streamed(client, stop=stop, **settings)[0] == full[:k]


def test_stop_buffer_holds_back_a_possible_stop():
    step = Step(0, "", 1.0)
    buf = StopBuffer(["再见"])
    out = [buf.push(Piece(c, step)) for c in "你再来再见了"[:5]]
    assert [("".join(p.text for p in ready), hit) for ready, hit in out] == \
        [("你", False), ("", False), ("再来", False), ("", False), ("", True)]
    buf = StopBuffer(["再见"])
    assert buf.push(Piece("再", step)) == ([], False) and [p.text for p in buf.flush()] == ["再"]


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert httpx.get(f"{server[0]}/health").json()["status"] == "ok"  # 不需要 API key


def test_cli_serve_builds_the_app_from_flags(checkpoint, monkeypatch, capsys):
    from studygpt.cli.parser import main
    started = {}
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **kw: started.update(app=app, host=host, port=port))
    assert main(["serve", str(checkpoint), "--api-key", "k", "--max-tokens-cap", "7"]) == 0
    settings = started["app"].state.settings
    assert (started["host"], started["port"]) == ("127.0.0.1", 8000)  # 默认只监听本机
    assert (settings.model_id, settings.api_key, settings.max_tokens_cap) == ("tiny", "k", 7)
    assert "http://127.0.0.1:8000/" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # 解析参数时就拦下（cli/parser.py 的 COUNT）：一行错误，不是 traceback
        main(["serve", str(checkpoint), "--max-tokens-cap", "0"])
    assert exit_info.value.code == 2 and "--max-tokens-cap" in capsys.readouterr().err


# ===== 2. 出错时：OpenAI 式错误体，服务器照常工作 =====
def test_bad_requests_get_openai_errors(server, client):
    url, _ = server
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "robot", "content": "你好"}])
    assert err.value.param == "messages[0].role" and "robot" in err.value.message
    bad_turns = [[], [{"role": "assistant", "content": "你好"}], [{"role": "user", "content": "a"}] * 2,
                 [{"role": "system", "content": "只有系统提示"}]]
    for messages in bad_turns:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="tiny", messages=messages)
    with pytest.raises(openai.BadRequestError) as err:
        chat(client, "你好" * 300)
    assert err.value.code == "context_length_exceeded"
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    raw = [("{not json", None), (json.dumps({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
                                 "temperature"),
           (json.dumps({"messages": [{"role": "user", "content": "x"}], "top_p": 0}), "top_p")]
    for body, param in raw:
        response = httpx.post(f"{url}/v1/chat/completions", content=body, headers=headers)
        error = response.json()["error"]
        assert response.status_code == 400 and error["param"] == param and error["type"] == "invalid_request_error"
    assert httpx.get(f"{url}/v1/nothing-here", headers=headers).json()["error"]["code"] == "not_found"
    assert chat(client, max_tokens=3).choices[0].message.content is not None  # 还在正常工作


def test_api_key_is_required(server):
    url, _ = server
    wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        chat(wrong)
    response = httpx.get(f"{url}/v1/models")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/").status_code == 200  # 网页本身不需要 key


# ===== 3. 断开与并发 =====
def test_client_disconnect_stops_generation(server, client):
    url, _ = server
    before = health(url)
    stream = chat(client, temperature=0, max_tokens=CAP, stream=True)
    for _, _chunk in zip(range(3), stream):  # 读 3 块就挂断
        pass
    stream.close()
    deadline = time.time() + 10
    while health(url)["cancelled"] == before["cancelled"] and time.time() < deadline:
        time.sleep(0.02)
    after = health(url)
    assert after["cancelled"] == before["cancelled"] + 1
    assert after["tokens"] - before["tokens"] < CAP  # 没有算到上限就停了


def test_concurrent_streams_equal_sequential(client):
    settings = dict(temperature=1.0, max_tokens=24)
    alone = {seed: streamed(client, seed=seed, **settings)[0] for seed in range(16)}
    with ThreadPoolExecutor(16) as pool:
        together = dict(zip(alone, pool.map(lambda s: streamed(client, seed=s, **settings)[0], alone)))
    assert together == alone and len(set(alone.values())) > 8


# ===== 4. 网页 =====
def test_page_and_static_files_have_no_external_assets(server):
    url, _ = server
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and "新对话 (new conversation)" in page.text and "看看里面" in page.text
    for name in ("chat.js", "style.css"):
        response = httpx.get(f"{url}/static/{name}")
        assert response.status_code == 200 and "://" not in response.text
    assert "://" not in page.text


@pytest.fixture(scope="module")
def open_server(checkpoint):
    """浏览器测试用的服务器（不设 API key）；设置了 STUDYGPT_SCREENSHOT_RUN 时用那个训练好的模型。
    每个词元停 10 毫秒：回答一定分好几次到达浏览器，测试才能看到"一段一段出现"。停在最后的归一化层上——
    prefill（model.forward）和连续批处理的每一步解码（batch_decode.decode_rows，不经过 model.forward）都要经过它。"""
    run = Path(os.environ.get("STUDYGPT_SCREENSHOT_RUN") or checkpoint)
    model, tokenizer, _ = load_model(run)
    norm = model.norm.forward
    model.norm.forward = lambda x: (time.sleep(0.01), norm(x))[1]
    with serve_in_background(create_app(model, tokenizer, ServeSettings(model_id=run.name))) as url:
        yield url


def test_browser_chat_streams_and_looks_inside(open_server):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} 不存在：请先 apt-get install chromium fonts-wqy-microhei（.ci/run 会装）")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{open_server}/")
        page.wait_for_function("document.getElementById('model').textContent.includes('上下文')")
        # 记下回答气泡每次变化时的长度：流式输出会看到好几个中间状态
        page.evaluate("""() => { window.lengths = [];
            new MutationObserver(() => { const b = document.querySelector('.msg.assistant .bubble');
              if (b) window.lengths.push(b.textContent.length); })
            .observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true}); }""")
        page.fill("#seed", "1")  # 固定种子：每次跑出同样的回答（截图也可复现）
        for turn, text in enumerate(["你好", "你是谁？"], start=1):
            page.fill("#input", text)
            page.press("#input", "Enter")
            page.wait_for_function(f"document.querySelectorAll('.msg.assistant[data-state=done]').length === {turn}")
        replies = page.locator(".msg.assistant .bubble").all_inner_texts()
        assert len(replies) == 2 and all(replies)
        assert len(set(page.evaluate("window.lengths")) - {0}) > 1  # 一段一段出现的
        page.check("#inspect")
        first = page.locator(".msg.assistant").first
        steps = first.locator(".step")
        assert steps.first.is_visible() and steps.count() >= 1
        assert first.locator(".cand").count() == 5 * steps.count()  # 每一步 5 个候选
        if os.environ.get("STUDYGPT_SCREENSHOT"):
            page.screenshot(path=os.environ["STUDYGPT_SCREENSHOT"])
        page.click("#new-chat")
        assert page.locator(".msg").count() == 0
        browser.close()
