"""HTTP 服务 (FastAPI)：OpenAI 兼容的 API + 网页聊天界面。

    GET  /                      网页聊天界面 (static/index.html)
    GET  /health                健康检查与生成计数（不需要 API key）
    GET  /v1/models             模型列表（只有一个）
    POST /v1/chat/completions   聊天补全；stream=true 时用 server-sent events (SSE) 逐词发送

这里只做"协议"：解析请求（messages.py 把 OpenAI 的消息变成对话轮次）→ 交给 engine.py 排队生成 →
把结果写成 OpenAI 的 JSON 格式：正文在 content，草稿在 reasoning_content，工具调用在 tool_calls。
采样、上下文、stop 的规则都在 engine.py 与 generation/generate.py 里；工具调用的两轮在 engine.Answer。
"""
from __future__ import annotations

import json
import math
import secrets
import threading
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Iterator

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from studygpt.errors import StudyGPTError
from studygpt.generation.generate import GenerationSettings, SamplingConfig
from studygpt.model.transformer import DialogueModel
from studygpt.serve.engine import Answer, Engine, Finish, Piece, ToolUse
from studygpt.serve.messages import to_conversation
from studygpt.serve.schemas import (
    CHAT_RESPONSES,
    ERROR_RESPONSES,
    ApiError,
    ChatRequest,
    validation_error,
)
from studygpt.tokenizer.char import Tokenizer

STATIC = Path(__file__).parent / "static"
GENERATION_FAILED = "生成时服务器出错 (server error)；详情见服务器日志。"
NO_PROBABILITY = -9999.0  # 概率为 0 的候选（被 top-k/top-p 排除）：log(0) = -inf 不能写进 JSON，OpenAI 也用 -9999


@dataclass
class ServeSettings:
    """服务器设置。max_tokens_cap：每个回答最多多少个词元（请求里的 max_tokens 更大时按它算）；
    api_key：设置后 /v1/* 需要 `Authorization: Bearer KEY`；temperature：请求没给时的默认温度；
    max_batch：最多几个请求一起解码（连续批处理，见 batcher.py；1 = 一个接一个）；
    max_body_bytes：请求体最多多少字节，超过就 413（1 MB 能装下几十万字的对话，远超模型的上下文）。"""
    model_id: str = "studygpt"
    max_tokens_cap: int = 256
    api_key: str | None = None
    temperature: float = SamplingConfig.temperature  # 与生成的默认温度是同一个数
    max_batch: int = 16
    max_body_bytes: int = 2**20

    def __post_init__(self) -> None:
        if self.max_tokens_cap < 1:
            raise StudyGPTError(f"--max-tokens-cap={self.max_tokens_cap} 无效：请用 ≥ 1 的整数。")
        if self.api_key == "":
            raise StudyGPTError("--api-key 不能是空字符串；不需要鉴权时不要给这个参数。")
        if self.max_batch < 1:
            raise StudyGPTError(f"--max-batch={self.max_batch} 无效：请用 ≥ 1 的整数（1 表示一次只生成一条回答）。")
        if self.max_body_bytes < 1024:
            raise StudyGPTError(f"max_body_bytes={self.max_body_bytes} 太小：请用 ≥ 1024 的整数。")


# ===== 1. OpenAI 格式的小积木 =====
def logprob(p: float) -> float:
    """概率 → 对数概率 (log probability)；概率为 0 时给 NO_PROBABILITY。"""
    return max(math.log(p), NO_PROBABILITY) if p > 0 else NO_PROBABILITY


def token_logprobs(piece: Piece) -> dict:
    """一步 → choices[].logprobs.content[] 里的一项：选中的词元与它的 top_logprobs 候选。"""
    return {"token": piece.text, "logprob": logprob(piece.step.prob), "bytes": list(piece.text.encode()),
            "top_logprobs": [{"token": t, "logprob": logprob(p), "bytes": list(t.encode())}
                             for t, p in piece.step.top]}


def usage(finish: Finish) -> dict:
    """OpenAI 的 usage：提示、回答、合计各多少个词元。"""
    return {"prompt_tokens": finish.prompt_tokens, "completion_tokens": finish.completion_tokens,
            "total_tokens": finish.prompt_tokens + finish.completion_tokens}


def sse(data: dict | str) -> str:
    """一个 server-sent event：`data: ...` 加一个空行。"""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def error_response(err: ApiError, headers: dict | None = None) -> JSONResponse:
    """ApiError → 带 OpenAI 错误体的 JSON 响应；401 时按 HTTP 规矩加上 WWW-Authenticate 头。
    headers：原样带上的头，例如 405 时 Starlette 给的 Allow（HTTP 规定 405 必须说明允许哪些方法）。"""
    headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if err.status == 401 else {})}
    return JSONResponse(err.body(), status_code=err.status, headers=headers or None)


class BodyLimit:
    """ASGI 中间件 (middleware)：请求体超过 limit 字节就回 413，不把它读进内存。

    先看 Content-Length 头，说了超限就直接拒绝；分块发送 (chunked) 没有这个头，就边收边数，
    超过时在读请求体的地方抛 413（FastAPI 把 HTTPException 原样交给 app 的错误处理）。
    """

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    def too_large(self) -> HTTPException:
        return HTTPException(413, f"请求体超过 {self.limit:,} 字节 (request body too large)；请缩短对话历史")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            message = f"{scope['method']} {scope['path']}: {self.too_large().detail}"  # 和 on_http 的写法一致
            return await error_response(ApiError(413, message, code="request_too_large"))(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise self.too_large()
            return message

        await self.app(scope, counted_receive, send)


# ===== 2. 回答：一次给完，或者流式 =====
def reply_message(content: str, reasoning: str, uses: list[ToolUse]) -> dict:
    """助手消息：content 是看得见的回答；有草稿时加 reasoning_content（DeepSeek、MiniMind 用的字段名）；
    交给客户端执行的调用放 tool_calls（这时 content 按 OpenAI 的习惯为 null）；
    服务器自己执行了的调用连同结果放 server_tool_calls（本项目的扩展）。没学过思考与工具的模型，回答和以前一样。"""
    message = {"role": "assistant", "content": content, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    for_client = [u.as_openai() for u in uses if u.output is None]
    if for_client:
        message.update(content=content or None, tool_calls=for_client)
    ran = [u.as_openai() for u in uses if u.output is not None]
    if ran:
        message["server_tool_calls"] = ran
    return message


def tool_delta(use: ToolUse) -> dict:
    """流式输出里的一次工具调用：OpenAI 的 delta.tool_calls 每项带 index（这是第几个调用；这里总是 0）。"""
    return {"tool_calls" if use.output is None else "server_tool_calls": [{"index": 0, **use.as_openai()}]}


async def complete(answer: Answer, request: Request, head: dict, with_logprobs: bool) -> Response:
    """stream=false：等全部生成完，返回一个 chat.completion。每个片段之后看一眼客户端是否已断开。"""
    pieces: dict[str, list[Piece]] = {"content": [], "reasoning": []}
    uses: list[ToolUse] = []
    try:
        async for item in answer:
            if isinstance(item, Finish):
                finish = item
            elif isinstance(item, ToolUse):
                uses.append(item)
            else:
                pieces[item.channel].append(item)
                if await request.is_disconnected():  # 客户端已走：返回后调用方的 finally 会取消生成
                    return Response(status_code=499)
    except Exception as exc:  # 工人线程里的程序错误（已记日志）：给客户端一个 OpenAI 式的 500
        raise ApiError(500, GENERATION_FAILED, type="server_error") from exc
    content, reasoning = ("".join(p.text for p in pieces[k]) for k in ("content", "reasoning"))
    # logprobs 只覆盖正文 content 的词元（和 OpenAI 一样）；草稿与工具调用的词元不在里面
    logprobs = {"content": [token_logprobs(p) for p in pieces["content"]], "refusal": None} if with_logprobs else None
    return JSONResponse({**head, "object": "chat.completion", "usage": usage(finish),
                         "choices": [{"index": 0, "message": reply_message(content, reasoning, uses),
                                      "logprobs": logprobs, "finish_reason": finish.reason}]})


async def stream_events(answer: Answer, head: dict, with_logprobs: bool, include_usage: bool) -> AsyncIterator[str]:
    """stream=true：先发带 role 的块，再每个片段一块（草稿在 delta.reasoning_content，正文在 delta.content，
    工具调用在 delta.tool_calls / delta.server_tool_calls），最后一块带 finish_reason，然后 `data: [DONE]`。

    客户端断开时 Starlette 会取消这个生成器，finally 里的 answer.cancel() 让工人线程停下。
    """
    def chunk(delta: dict, finish_reason: str | None = None, logprobs: dict | None = None) -> str:
        return sse({**head, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]})

    try:
        yield chunk({"role": "assistant", "content": ""})
        async for item in answer:
            if isinstance(item, Finish):
                yield chunk({}, item.reason)
                if include_usage:
                    yield sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage(item)})
            elif isinstance(item, ToolUse):
                yield chunk(tool_delta(item))
            elif item.channel == "reasoning":
                yield chunk({"reasoning_content": item.text})
            else:
                logprobs = {"content": [token_logprobs(item)], "refusal": None} if with_logprobs else None
                yield chunk({"content": item.text}, logprobs=logprobs)
        yield sse("[DONE]")
    except Exception:  # 响应头已经发出，没法再改状态码：按 OpenAI 的做法在流里发一个错误事件
        yield sse(ApiError(500, GENERATION_FAILED, type="server_error").body())
    finally:
        answer.cancel()


# ===== 3. 组装应用 =====
def create_app(model: DialogueModel, tokenizer: Tokenizer, settings: ServeSettings | None = None) -> FastAPI:
    """模型 + 分词器 + 设置 → FastAPI 应用（还没开始监听端口；见 run_server / serve_in_background）。"""
    settings = settings or ServeSettings()
    engine = Engine(model, tokenizer, settings.max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.close()

    # docs_url=None：FastAPI 自带的 /docs 页面要从网上加载脚本，这里不提供
    app = FastAPI(title="StudyGPT", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine, app.state.settings = engine, settings

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, err: ApiError):
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError):
        return error_response(validation_error(list(err.errors())))

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, err: HTTPException):  # 404 路径不存在、405 方法不对……
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(err.status_code)
        return error_response(ApiError(err.status_code, f"{request.method} {request.url.path}: {err.detail}", code=code),
                              err.headers)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, err: Exception):
        return error_response(ApiError(500, "服务器内部错误 (server error)；详情见服务器日志。", type="server_error"))

    def check_api_key(request: Request) -> None:
        """/v1/* 的依赖 (dependency)：设置了 API key 时，请求头必须是 `Authorization: Bearer KEY`。"""
        if settings.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode()):
            raise ApiError(401, "API key 不对或缺少 (invalid or missing API key)：请在请求头里带上 "
                           "`Authorization: Bearer KEY`，KEY 是启动服务器时 --api-key 给的值。", code="invalid_api_key")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_api_key)], responses=ERROR_RESPONSES)

    @v1.get("/models")
    async def models():
        return {"object": "list", "data": [{"id": settings.model_id, "object": "model", "created": 0,
                                            "owned_by": "studygpt", "max_len": model.config.max_len,
                                            "max_tokens_cap": settings.max_tokens_cap}]}

    @v1.post("/chat/completions", responses=CHAT_RESPONSES)
    async def chat_completions(req: ChatRequest, request: Request):
        conversation = to_conversation(req.messages)
        max_new = min(req.max_completion_tokens or req.max_tokens or settings.max_tokens_cap, settings.max_tokens_cap)
        # 没给 seed 时也抽一个随机种子：每个请求都有自己的随机数生成器，从不碰全局随机状态
        seed = secrets.randbits(63) if req.seed is None else req.seed
        try:
            sampling = SamplingConfig(settings.temperature if req.temperature is None else req.temperature,
                                      req.top_k, req.top_p, req.repetition_penalty or 1.0)
            generation = GenerationSettings(sampling, max_new, seed)
        except StudyGPTError as err:
            raise ApiError(400, str(err)) from err
        if req.top_logprobs and not req.logprobs:
            raise ApiError(400, "top_logprobs 需要同时设置 logprobs=true。", "top_logprobs")
        top_n = (req.top_logprobs or 0) if req.logprobs else 0
        job = engine.make_job(conversation.history, conversation.user_text, generation, top_n, req.stop,
                              conversation.pending, req.tool_names())
        answer = engine.answer(job)
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": settings.model_id,
                "system_fingerprint": None}
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(stream_events(answer, head, req.logprobs, include_usage),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            return await complete(answer, request, head, req.logprobs)
        finally:
            answer.cancel()

    app.include_router(v1)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": settings.model_id, "generations": engine.stats()}

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


# ===== 4. 启动服务器 =====
@contextmanager
def serve_in_background(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """在后台线程里运行 uvicorn（测试、基准、截图用）。port=0 表示随便找一个空闲端口。
    yield 根地址 "http://127.0.0.1:PORT"；离开 with 时关闭服务器。"""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="studygpt-uvicorn", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"服务器没能在 {host}:{port} 启动（端口被占用？）")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_server(model: DialogueModel, tokenizer: Tokenizer, settings: ServeSettings,
               host: str = "127.0.0.1", port: int = 8000) -> None:
    """在前台运行服务器，直到 Ctrl+C。默认只监听本机 (127.0.0.1)，别的机器连不上。"""
    if host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
        print(f"注意 (warning)：监听 {host} 且没有 --api-key，同一网络里的任何人都能使用这个服务。")
    print(f"网页 (web page): http://{host}:{port}/   ·   API: http://{host}:{port}/v1   ·   Ctrl+C 停止")
    uvicorn.run(create_app(model, tokenizer, settings), host=host, port=port, log_level="info")
