"""服务的滥用测试 (abuse cases)：手写的恶意或离谱的请求。每一个都得到一句 4xx（OpenAI 式错误体），服务器一直活着。

- 超大请求体 (10 MB) → 413，不读进内存；一万条消息 → 照常回答（历史按上下文截断）；
- 不合法的 JSON、不合法的 UTF-8、NaN / Infinity、max_tokens 为负或巨大、不认识的角色 → 400；
- API key 错了或没给 → 401（比较用 secrets.compare_digest，耗时与 key 哪里不同无关）；
- 流到一半断开的客户端 → 生成被取消；64 个客户端同时来 → 全部答完；
- /static/ 下的 `..`（含各种编码写法）读不到文件夹外面；监听非本机地址又没有 API key → 打印警告。
"""
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from studygpt.serve.app import (
    ServeSettings,
    create_app,
    run_server,
    serve_in_background,
)
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import DIALOGUES, tiny_model

API_KEY = "abuse-key"
CAP = 8


@pytest.fixture(scope="module")
def parts():
    tokenizer = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
    return tiny_model(tokenizer.vocab_size, n_layers=1, max_len=64), tokenizer


@pytest.fixture(scope="module")
def url(parts):
    app = create_app(*parts, ServeSettings(model_id="tiny", max_tokens_cap=CAP, api_key=API_KEY))
    with serve_in_background(app) as base:
        yield base


def post(url, body, headers=None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json", **(headers or {})}
    data = json.dumps(body).encode() if isinstance(body, dict) else body  # bytes 或分块的生成器原样发
    return httpx.post(f"{url}/v1/chat/completions", content=data, headers=headers, timeout=60, **kw)


def hello(**extra) -> dict:
    return {"messages": [{"role": "user", "content": "你好"}], "max_tokens": 4, **extra}


def assert_openai_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text[:300]
    message = response.json()["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


def alive(url) -> bool:
    return httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"


def test_ten_megabyte_body_is_413_before_it_is_read(url):
    big = {"messages": [{"role": "user", "content": "你" * (10 * 2**20 // 3)}]}
    assert "request body too large" in assert_openai_error(post(url, big), 413)

    def chunked():  # 没有 Content-Length 的分块上传：边收边数
        for _ in range(10):
            yield b" " * 2**20
    assert_openai_error(post(url, chunked()), 413)
    assert alive(url)


def test_ten_thousand_messages_get_an_answer(url):
    turns = [{"role": ("user", "assistant")[i % 2], "content": "你好"} for i in range(9_999)]
    response = post(url, {"messages": turns, "max_tokens": 2})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["usage"]["prompt_tokens"] <= 64  # 历史被截到上下文里


@pytest.mark.parametrize("body", [b"{not json", b'{"messages": [', b"\xff\xfe\x00garbage", b"",
                                  '{"messages": [{"role": "user", "content": "\xff"}]}'.encode("latin-1"),
                                  b"[" * 100_000])
def test_malformed_bodies_are_400(url, body):
    assert_openai_error(post(url, body), 400)


@pytest.mark.parametrize("field, value", [
    ("max_tokens", -1), ("max_tokens", 0), ("temperature", "NaN"), ("temperature", "Infinity"),
    ("top_p", "NaN"), ("repetition_penalty", "Infinity"), ("repetition_penalty", "-Infinity"),
    ("top_k", -5), ("seed", 2**70), ("max_tokens", True), ("stream", "yes"),
])
def test_out_of_range_and_non_finite_values_are_400(url, field, value):
    # NaN / Infinity 不是标准 JSON，但 Python 的 json 会解析它们：直接写进请求体的原文里
    raw = json.dumps(hello(**{field: "PLACEHOLDER"})).replace('"PLACEHOLDER"', str(value) if isinstance(value, str)
                                                                 and value.lstrip("-") in ("NaN", "Infinity")
                                                                 else json.dumps(value))
    assert_openai_error(post(url, raw.encode()), 400)


def test_huge_max_tokens_is_capped(url):
    response = post(url, hello(max_tokens=10**30))
    assert response.status_code == 200 and response.json()["usage"]["completion_tokens"] <= CAP


@pytest.mark.parametrize("role", ["tool", "function", "root", "", "USER"])
def test_unknown_roles_are_400(url, role):
    assert "role" in assert_openai_error(post(url, {"messages": [{"role": role, "content": "hi"}]}), 400)


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Bearer {API_KEY}x", f"bearer {API_KEY}", API_KEY,
                                    f"Bearer {API_KEY[:-1]}", "Bearer " + "x" * 10_000, "Bearer 你好"])
def test_wrong_or_missing_api_key_is_401(url, header):
    headers = {"Content-Type": "application/json"} | ({"Authorization": header} if header else {})
    response = httpx.post(f"{url}/v1/chat/completions", content=json.dumps(hello()).encode("utf-8"),
                          headers={k: v.encode("utf-8") for k, v in headers.items()}, timeout=30)
    assert_openai_error(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_api_key_compared_in_constant_time():
    """比较 key 用的是 secrets.compare_digest（= hmac.compare_digest），而不是 ==。"""
    import inspect

    from studygpt.serve import app as app_module
    source = inspect.getsource(app_module.create_app)
    assert "compare_digest(" in source and "== f\"Bearer" not in source


def test_client_disconnecting_mid_stream_cancels_and_server_stays_up(url):
    before = httpx.get(f"{url}/health").json()["generations"]
    for _ in range(5):
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=hello(stream=True, max_tokens=CAP),
                          headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as response:
            assert response.status_code == 200
            next(response.iter_lines())  # 读到第一块就走
    assert alive(url)
    after = httpx.get(f"{url}/health").json()["generations"]
    assert sum(after.values()) >= sum(before.values())


def test_sixty_four_concurrent_clients_all_get_answers(url):
    def one(i: int) -> int:
        body = hello(seed=i, stream=bool(i % 2))
        return post(url, body).status_code

    with ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(one, range(64)))
    assert codes == [200] * 64
    assert alive(url)


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """不经过 httpx 发请求：httpx 会把路径里的 .. 规范化掉，这里要原样发出去。"""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", [
    "/static/../../../../etc/passwd", "/static/..%2f..%2f..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%5c..%5c..%5cetc%5cpasswd", "/static/%252e%252e/%252e%252e/etc/passwd", "/static//etc/passwd",
    "/static/..%c0%af..%c0%afetc/passwd", "/static/../app.py", "/static/%2e%2e/app.py", "/static/../__init__.py",
])
def test_static_files_cannot_be_read_outside_their_folder(url, path):
    status, body = raw_get(url, path)
    assert status in (400, 404), (status, body[:200])
    assert b"root:" not in body and b"create_app" not in body and b"import" not in body


def test_static_files_still_served(url):
    status, body = raw_get(url, "/static/index.html")
    assert status == 200 and b"<html" in body.lower()


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("192.168.1.5", True), ("::", True),
                                          ("127.0.0.1", False), ("localhost", False), ("::1", False)])
def test_public_host_without_api_key_warns(parts, monkeypatch, capsys, host, warned):
    import uvicorn
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    run_server(*parts, ServeSettings(), host=host, port=0)
    assert ("warning" in capsys.readouterr().out) == warned
    run_server(*parts, ServeSettings(api_key="k"), host=host, port=0)  # 有 key 就不警告
    assert "warning" not in capsys.readouterr().out


# ===== 模糊测试 (tests/test_fuzz_api.py) 找到的问题的回归测试 =====

def test_405_keeps_the_allow_header(url):
    """HTTP 规定 405 必须带 Allow 头；自定义的错误处理曾经把 Starlette 给的头丢掉。"""
    response = httpx.request("TRACE", f"{url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
    assert_openai_error(response, 405)
    assert "GET" in response.headers["allow"]


@pytest.mark.parametrize("field, value", [("top_logprobs", False), ("max_tokens", "4"), ("seed", 1.0),
                                          ("logprobs", 1), ("temperature", "0.5")])
def test_booleans_and_strings_are_not_coerced_into_numbers(url, field, value):
    """/openapi.json 说是整数/数字/布尔，服务器就不能收下别的类型再悄悄转换（pydantic 的宽松模式会）。"""
    assert field in assert_openai_error(post(url, hello(**{field: value})), 400)


def test_openapi_documents_the_errors_and_the_stream(url):
    spec = httpx.get(f"{url}/openapi.json").json()
    responses = spec["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert "4XX" in responses and "422" not in responses  # 校验错误是 400（OpenAI 式），不是 FastAPI 默认的 422
    assert "text/event-stream" in responses["200"]["content"]
