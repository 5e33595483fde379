"""服务器的思考与工具 (reasoning and tools)：用官方 `openai` 客户端走一遍 OpenAI 的函数调用 (function calling)。

模型是当场训练、故意背熟几道题的极小模型 (overfitting on purpose)，存成检查点再加载，和 `studygpt serve runs/NAME` 一样：
    457加386等于多少？ → <tool_call>calculator(457+386)</tool_call>，拿到结果 843 后写 457加386等于843。
    25加17等于多少？   → <think>个位5+7+0=12，十位2+1+1=04</think>25加17等于42。
函数调用的来回：请求带 tools → 回答 tool_calls、finish_reason="tool_calls" → 客户端执行工具，把 assistant 消息和
role=tool 的结果消息接在后面再请求 → 最终回答。不带 tools 时服务器自己执行内置计算器，结果在 server_tool_calls 里。
"""
from __future__ import annotations

import json

import httpx
import openai
import pytest
import torch

from studygpt.generation.tool_use import (
    CALCULATOR_SCHEMA,
    calculator_tool,
    greedy_replies,
    run_tool,
)
from studygpt.model.checkpoint import load_model, save_checkpoint
from studygpt.model.transformer import lm_loss
from studygpt.posttrain.scratchpad import carry_scratchpad, demonstration
from studygpt.posttrain.tasks import Problem
from studygpt.serve.app import ServeSettings, create_app, serve_in_background
from studygpt.serve.batcher import one_thread
from studygpt.serve.messages import ToolUse, to_conversation
from studygpt.serve.schemas import ApiError, Message
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import IGNORE_INDEX, Reply, render_conversation
from studygpt.tokenizer.specials import EXTRA_TOKENS, PAD
from tests.conftest import DIALOGUES, tiny_model
from tests.test_serve import CHROMIUM, CHROMIUM_ARGS

TOOL_PROBLEMS = [Problem(457, 386), Problem(12, 30)]
THINK_PROBLEMS = [Problem(25, 17), Problem(68, 9)]
TOOL_Q, THINK_Q = TOOL_PROBLEMS[0].question, THINK_PROBLEMS[0].question
WEATHER = {"type": "function", "function": {"name": "weather", "description": "查天气",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


# ===== 0. 一个会调用工具、会打草稿的极小模型 =====
def demo_dialogues() -> list[list]:
    return ([[p.question, demonstration(p, "tool")] for p in TOOL_PROBLEMS]
            + [[p.question, demonstration(p, "think")] for p in THINK_PROBLEMS])


def overfit(model, tokenizer: Tokenizer, dialogues: list[list], max_steps: int = 1500, extra: int = 100) -> int:
    """普通的 Adam 循环，在这几段对话上训练到贪心解码 (greedy) 一字不差地写出示范（连同工具的第 2 轮），
    再多练 extra 步拉开差距 (margin)：服务器的批解码求和顺序不同，几乎打平的两个词元也不会换。返回总步数。"""
    rows = [render_conversation(d, tokenizer) for d in dialogues]
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.token_id(PAD)
    batch = {"input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
             "labels": torch.tensor([labels + [IGNORE_INDEX] * (width - len(labels)) for _, labels in rows])}
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    questions, wanted = [d[0] for d in dialogues], [d[1] for d in dialogues]

    def train_step() -> float:
        loss, _ = lm_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def reproduces() -> bool:
        return greedy_replies(model, tokenizer, questions, max_length=100) == wanted

    for step in range(50, max_steps + 1, 50):
        loss = [train_step() for _ in range(50)][-1]
        if reproduces():
            for _ in range(extra):
                train_step()
            assert reproduces()
            return step + extra
    raise AssertionError(f"{max_steps} 步后还没背熟示范（最后的损失 {loss:.3f}）")


@pytest.fixture(scope="session")
def tool_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    dialogues = demo_dialogues()
    tokenizer = Tokenizer().build_vocab(str(t) for d in dialogues for t in d)
    tokenizer.add_tokens(EXTRA_TOKENS + sorted({c for d in dialogues for r in d[1:] for c in r.reasoning + r.tool_call}))
    model = tiny_model(tokenizer.vocab_size, d_model=64, n_layers=2, n_head=4, max_len=256)
    with one_thread():  # 这么小的模型一个线程最快：两个线程互相等，机器忙时慢十倍
        overfit(model, tokenizer, dialogues)
    return save_checkpoint(tmp_path_factory.mktemp("tools") / "tools", model, tokenizer)


@pytest.fixture(scope="module")
def url(tool_checkpoint):
    model, tokenizer, _ = load_model(tool_checkpoint)
    with serve_in_background(create_app(model, tokenizer, ServeSettings(model_id="tools", max_tokens_cap=100))) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-local", max_retries=0, timeout=60)


def ask(client, messages, **kw):
    return client.chat.completions.create(model="tools", messages=messages, temperature=0, **kw)


def stream(client, messages, **kw) -> dict:
    """流式请求，把各块拼回一条消息：content、reasoning_content、tool_calls、server_tool_calls、finish_reason。"""
    out = {"content": "", "reasoning_content": "", "tool_calls": [], "server_tool_calls": [], "finish_reason": None}
    for chunk in ask(client, messages, stream=True, **kw):
        if not chunk.choices:  # include_usage 的最后一块只有 usage
            continue
        delta = chunk.choices[0].delta
        out["content"] += delta.content or ""
        out["reasoning_content"] += getattr(delta, "reasoning_content", None) or ""
        out["tool_calls"] += [c.model_dump() for c in delta.tool_calls or []]
        out["server_tool_calls"] += getattr(delta, "server_tool_calls", None) or []
        out["finish_reason"] = chunk.choices[0].finish_reason or out["finish_reason"]
    return out


def run_client_tool(arguments: str) -> str:
    """客户端一侧执行工具：这里就是本项目的计算器。"""
    return calculator_tool(json.loads(arguments))


# ===== 1. 函数调用的来回 (function-calling round trip) =====
def test_round_trip_with_client_side_tool(client):
    messages = [{"role": "user", "content": TOOL_Q}]
    first = ask(client, messages, tools=[CALCULATOR_SCHEMA]).choices[0]
    assert first.finish_reason == "tool_calls" and not first.message.content
    (call,) = first.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "calculator"
    assert json.loads(call.function.arguments) == {"expression": "457+386"}
    messages += [first.message, {"role": "tool", "tool_call_id": call.id,
                                 "content": run_client_tool(call.function.arguments)}]
    final = ask(client, messages, tools=[CALCULATOR_SCHEMA]).choices[0]
    assert final.message.content == "457加386等于843。" and final.finish_reason == "stop"
    assert not final.message.tool_calls


def test_round_trip_streaming(client):
    messages = [{"role": "user", "content": TOOL_Q}]
    first = stream(client, messages, tools=[CALCULATOR_SCHEMA])
    assert first["finish_reason"] == "tool_calls" and first["content"] == ""
    (call,) = first["tool_calls"]
    assert call["index"] == 0 and call["function"]["name"] == "calculator"
    messages += [{"role": "assistant", "content": None,
                  "tool_calls": [{"id": call["id"], "type": "function", "function": call["function"]}]},
                 {"role": "tool", "tool_call_id": call["id"], "content": run_client_tool(call["function"]["arguments"])}]
    final = stream(client, messages, tools=[CALCULATOR_SCHEMA])
    assert final["content"] == "457加386等于843。" and final["finish_reason"] == "stop"


def test_client_result_is_what_the_model_reads(client):
    """模型接着客户端给的结果写：给一个错的结果，它的回答跟着变（证明结果真的进了提示）。"""
    messages = [{"role": "user", "content": TOOL_Q},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
                    "name": "calculator", "arguments": '{"expression": "457+386"}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "843"}]
    assert ask(client, messages).choices[0].message.content == "457加386等于843。"


def test_without_tools_the_server_runs_the_calculator(client):
    reply = ask(client, [{"role": "user", "content": TOOL_Q}])
    message = reply.choices[0].message
    assert message.content == "457加386等于843。" and reply.choices[0].finish_reason == "stop"
    assert not message.tool_calls
    (ran,) = message.server_tool_calls
    assert ran["function"]["name"] == "calculator" and ran["output"] == "843"
    assert json.loads(ran["function"]["arguments"]) == {"expression": "457+386"}
    streamed = stream(client, [{"role": "user", "content": TOOL_Q}], stream_options={"include_usage": True})
    assert streamed["content"] == message.content and streamed["finish_reason"] == "stop"
    assert [c["output"] for c in streamed["server_tool_calls"]] == ["843"]
    # 工具不在请求的 tools 里（客户端只有 weather）：计算器仍由服务器执行
    other = ask(client, [{"role": "user", "content": TOOL_Q}], tools=[WEATHER]).choices[0]
    assert other.finish_reason == "stop" and other.message.content == "457加386等于843。"


def test_usage_counts_both_rounds_and_max_tokens_covers_both(client, url):
    reply = ask(client, [{"role": "user", "content": TOOL_Q}])
    call_tokens = ask(client, [{"role": "user", "content": TOOL_Q}], tools=[CALCULATOR_SCHEMA]).usage.completion_tokens
    assert reply.usage.completion_tokens == call_tokens + len("457加386等于843。") + 1  # 第 2 轮的正文 + <|end|>
    short = ask(client, [{"role": "user", "content": TOOL_Q}], max_tokens=call_tokens + 3)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == call_tokens + 3
    assert short.choices[0].message.content == "457"


# ===== 2. 草稿 (reasoning_content) =====
def test_reasoning_content_is_separate_from_content(client):
    reply = ask(client, [{"role": "user", "content": THINK_Q}], logprobs=True, top_logprobs=2)
    message = reply.choices[0].message
    assert message.reasoning_content == carry_scratchpad(25, 17) and message.content == "25加17等于42。"
    assert "".join(t.token for t in reply.choices[0].logprobs.content) == message.content  # logprobs 只覆盖正文
    streamed = stream(client, [{"role": "user", "content": THINK_Q}])
    assert (streamed["reasoning_content"], streamed["content"]) == (message.reasoning_content, message.content)


def test_reasoning_in_history_is_dropped_and_in_pending_turn_kept():
    tool_call = {"id": "c", "type": "function", "function": {"name": "calculator", "arguments": '{"expression":"1+2"}'}}
    messages = [Message.model_validate(m) for m in [
        {"role": "system", "content": "忽略我"},
        {"role": "user", "content": "问1"}, {"role": "assistant", "content": "答1", "reasoning_content": "想1"},
        {"role": "user", "content": "问2"}, {"role": "assistant", "content": None, "tool_calls": [tool_call],
                                            "reasoning_content": "想2"},
        {"role": "tool", "tool_call_id": "c", "content": "3"}, {"role": "assistant", "content": "答2"},
        {"role": "user", "content": "问3"}, {"role": "assistant", "tool_calls": [tool_call], "reasoning_content": "想3"},
        {"role": "tool", "tool_call_id": "c", "content": "3"}]]
    conv = to_conversation(messages)
    call = '{"name":"calculator","arguments":{"expression":"1+2"}}'
    assert conv.history == ["问1", "答1", "问2", Reply("答2", "", call, "3")]
    assert conv.user_text == "问3" and conv.pending == Reply("", "想3", call, "3")


# ===== 3. 不怀好意的工具消息与参数：一句干净的 400，或照常回答；绝不 500 =====
def call_message(arguments: str, name: str = "calculator", **extra) -> dict:
    return {"role": "assistant", "content": None, **extra,
            "tool_calls": [{"id": "call_x", "type": "function", "function": {"name": name, "arguments": arguments}}]}


def after_call(arguments: str, result: str = "1", name: str = "calculator") -> list[dict]:
    return [{"role": "user", "content": TOOL_Q}, call_message(arguments, name),
            {"role": "tool", "tool_call_id": "call_x", "content": result}]


HUGE = "9" * 10_000
HOSTILE = {
    "non-JSON arguments": (after_call("{not json", "错误：arguments 不是合法的 JSON"), 200),
    "arguments not an object": (after_call("[1, 2]"), 200),
    "unknown tool": (after_call('{"path": "/etc/passwd"}', run_tool('{"name": "rm_rf"}'), name="rm_rf"), 200),
    "10,000-digit number in arguments": (after_call('{"expression": ' + HUGE + "}"), 400),
    "10,000-digit tool result": (after_call('{"expression": "1+1"}', HUGE), 400),
    "deeply nested arguments": (after_call("[" * 50_000), 400),
    "tool message out of nowhere": ([{"role": "user", "content": "你好"}, {"role": "tool", "content": "1"}], 400),
    "tool_calls without a tool message": ([{"role": "user", "content": TOOL_Q}, call_message("{}")], 400),
    "two tool calls at once": ([{"role": "user", "content": TOOL_Q},
                                {"role": "assistant", "tool_calls": call_message("{}")["tool_calls"] * 2},
                                {"role": "tool", "tool_call_id": "call_x", "content": "1"}], 400),
    "tool message without content": ([{"role": "user", "content": TOOL_Q}, call_message("{}"),
                                      {"role": "tool", "tool_call_id": "call_x"}], 400),
    "arguments as an object, not a string": ([{"role": "user", "content": TOOL_Q}, {
        "role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                             "function": {"name": "calculator", "arguments": {"expression": "1"}}}]},
        {"role": "tool", "content": "1"}], 400),
    "ends with the assistant's call": (after_call("{}") + [{"role": "assistant", "content": "好"}], 400),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_tool_messages_get_clean_answers(url, name):
    messages, status = HOSTILE[name]
    for streaming in (False, True):
        response = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
            "messages": messages, "max_tokens": 20, "temperature": 0, "stream": streaming,
            "tools": [CALCULATOR_SCHEMA]})
        assert response.status_code == status, response.text[:300]
        if status == 400:
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and "\n" not in error["message"]
            assert "Traceback" not in error["message"]
        elif streaming:
            assert response.text.rstrip().endswith("data: [DONE]") and '"error"' not in response.text
        else:
            assert isinstance(response.json()["choices"][0]["message"]["content"], str)
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


@pytest.mark.parametrize("tools", [[{"type": "retrieval"}], [{"type": "function", "function": {"name": ""}}],
                                   "calculator", [{"type": "function", "function": {"name": "x", "parameters": 3}}]])
def test_malformed_tools_are_400(url, tools):
    response = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                          json={"messages": [{"role": "user", "content": "你好"}], "tools": tools})
    assert response.status_code == 400 and response.json()["error"]["param"].startswith("tools")


def test_model_calls_that_cannot_be_parsed_stay_on_the_server():
    assert ToolUse.from_model('{"name":"calculator","arguments":{"expression":"1+2"}}').name == "calculator"
    broken = ToolUse.from_model('{"name": calculator')
    assert broken.name == "" and broken.arguments == '{"name": calculator'  # 名字为空：不会交给客户端
    assert broken.as_openai()["id"].startswith("call_") and "output" not in broken.as_openai()


def test_conversation_errors_name_the_message():
    with pytest.raises(ApiError) as err:
        to_conversation([Message(role="user", content="你好"), Message(role="tool", content="1")])
    assert err.value.param == "messages[1].role" and "tool" in err.value.message


# ===== 4. 没学过工具的模型：照旧回答；对话里有工具调用时一句 400 =====
@pytest.fixture(scope="module")
def plain_url():
    tokenizer = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
    app = create_app(tiny_model(tokenizer.vocab_size, n_layers=1, max_len=64), tokenizer,
                     ServeSettings(model_id="plain", max_tokens_cap=8))
    with serve_in_background(app) as base:
        yield base


def test_plain_model_ignores_tools_and_refuses_tool_history_clearly(plain_url):
    body = {"messages": [{"role": "user", "content": "你好"}], "tools": [CALCULATOR_SCHEMA], "seed": 1}
    message = httpx.post(f"{plain_url}/v1/chat/completions", json=body, timeout=60).json()["choices"][0]["message"]
    assert set(message) == {"role", "content", "refusal"}  # 和以前一样：没有 reasoning_content、tool_calls
    response = httpx.post(f"{plain_url}/v1/chat/completions", timeout=60,
                          json={"messages": after_call('{"expression": "1+1"}', "2")})
    assert response.status_code == 400 and "<tool_call>" in response.json()["error"]["message"]


# ===== 5. 网页：草稿与工具调用折叠在回答上面 =====
def test_browser_folds_reasoning_and_tool_calls(url):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} 不存在：请先 apt-get install chromium fonts-wqy-microhei（.ci/run 会装）")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{url}/")
        page.evaluate("document.getElementById('temperature').value = '0'")  # 贪心：背熟的回答

        def ask_page(question: str):
            page.click("#new-chat")  # 每题一段新对话：模型只背过单轮的示范
            page.fill("#input", question)
            page.press("#input", "Enter")
            page.wait_for_function("document.querySelector('.msg.assistant[data-state=done]') !== null")
            return page.locator(".msg.assistant").first

        think = ask_page(THINK_Q)
        assert think.locator(".bubble").inner_text() == "25加17等于42。"
        assert think.locator("details.reasoning").get_attribute("open") is None  # 默认折叠
        assert not think.locator("details.reasoning pre").is_visible()
        think.locator("details.reasoning summary").click()
        assert think.locator("details.reasoning pre").inner_text() == carry_scratchpad(25, 17)
        tool = ask_page(TOOL_Q)
        assert tool.locator(".bubble").inner_text() == "457加386等于843。"
        assert tool.locator("details.tool").get_attribute("open") is None
        assert "843" in tool.locator("details.tool pre").text_content()
        browser.close()
