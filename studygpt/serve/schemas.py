"""API 的数据形状 (schemas)：OpenAI 兼容的请求体，以及 OpenAI 式的错误体。

请求体用 pydantic 校验：类型不对、取值越界都变成 400 错误，错误体和 OpenAI 的一样：
    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages[0].role", "code": null}}
所以官方 `openai` 客户端会把它变成 `openai.BadRequestError`，程序能照常处理。

不认识的字段（response_format、tool_choice……）直接忽略，和多数兼容服务器一样；认识的字段必须对。
认识的字段按严格模式 (strict) 校验：和 /openapi.json 写的类型一致，`"top_logprobs": false`、`"max_tokens": "5"`
不会被悄悄转换成 0 和 5（模糊测试找到的：描述说是整数，服务器却收下了布尔值）。
工具 (tools) 与 role=tool 的消息怎样变成模型看到的对话，见 messages.py。
"""
from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

IGNORED_ROLES = ("system", "developer")  # 接受但不使用：小模型训练时从没见过系统提示 (system prompt)
Role = Literal["system", "developer", "user", "assistant", "tool"]
ROLES = get_args(Role)


class ApiError(Exception):
    """一个会以 OpenAI 错误体返回给客户端的错误。status: HTTP 状态码；param: 出问题的参数名。"""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


STRICT = ConfigDict(strict=True)


class TextPart(BaseModel):
    """OpenAI 允许 content 写成若干"片段" (content parts)；这个纯文字模型只收 type="text" 的。"""
    model_config = STRICT
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    """一次函数调用：函数名 name 和参数 arguments（OpenAI 规定 arguments 是一段 JSON 文字，不是对象）。"""
    model_config = STRICT
    name: str
    arguments: str


class ToolCall(BaseModel):
    """助手消息里的一次工具调用 (tool call)：id 由服务器起（"call_…"），客户端执行后用 tool_call_id 指回它。"""
    model_config = STRICT
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    """一条消息。assistant 的消息可以没有 content 而带 tool_calls；role=tool 的消息是工具的结果，
    tool_call_id 说明它回答的是哪一次调用；reasoning_content 是助手的草稿（DeepSeek 的字段名）。"""
    model_config = STRICT
    role: Role
    content: str | list[TextPart] | None = None
    name: str | None = None  # OpenAI 的可选字段；接受，不使用
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None

    def text(self) -> str:
        """消息的文字：字符串原样返回，片段列表就把各段文字连起来，没有 content 时是空字符串。"""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content or [])


class FunctionSpec(BaseModel):
    """tools 里的一个函数：名字、说明和参数的 JSON Schema。模型只会写它训练时见过的工具，说明与参数只是接受。"""
    model_config = STRICT
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict | None = None
    strict: bool | None = None


class Tool(BaseModel):
    """OpenAI 的函数工具 (function tool)：{"type": "function", "function": {...}}。"""
    model_config = STRICT
    type: Literal["function"]
    function: FunctionSpec


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool = False  # 流的最后多发一个只有 usage 的块 (chunk)


class ChatRequest(BaseModel):
    """POST /v1/chat/completions 的请求体。None 表示"用服务器的默认值"。"""
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str | None = None  # 只服务一个模型：任何名字都接受，回答里写服务器的模型名
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None  # 客户端会执行的工具：模型调用它们时，回答以 finish_reason="tool_calls" 结束
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # OpenAI 的新名字，优先于 max_tokens
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stop: str | list[str] | None = Field(None, validate_default=True)  # 校验后总是 list[str]
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    n: int = Field(1, ge=1, le=1)  # 一次只生成一条回答
    # ---- OpenAI 没有、本项目额外支持的采样设置 (extras) ----
    top_k: int | None = Field(None, ge=1)
    repetition_penalty: float | None = Field(None, gt=0, le=10)

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, stop: str | list[str] | None) -> list[str]:
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > 4:
            raise ValueError("最多 4 个 stop 字符串 (at most 4 stop sequences)")
        return [s for s in stops if s]  # 空字符串没有意义，丢掉

    def tool_names(self) -> frozenset[str]:
        """客户端声明了的工具名：模型调用这些时交给客户端执行。"""
        return frozenset(t.function.name for t in self.tools or [])


# ===== 回答的形状：只为写进 /openapi.json（模糊测试按它核对每个回答），回答本身由 app.py 直接拼成 JSON =====
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ReplyToolCall(ToolCall):
    """回答里的一次工具调用；服务器自己执行了的（server_tool_calls）还带着结果 output。"""
    output: str | None = None


class ReplyMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None  # 模型要客户端执行工具 (tool_calls) 时为 null
    reasoning_content: str | None = None  # 草稿 (<think> 里的)：只有会思考的模型才有
    tool_calls: list[ReplyToolCall] | None = None  # 交给客户端执行的调用
    server_tool_calls: list[ReplyToolCall] | None = None  # 本项目的扩展：服务器自己执行了的调用与结果


class Choice(BaseModel):
    index: int
    message: ReplyMessage
    finish_reason: Literal["stop", "length", "cancelled", "tool_calls"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


ERROR_RESPONSES = {"4XX": {"model": ErrorBody, "description": "OpenAI 式的错误体 (OpenAI-style error body)"}}
CHAT_RESPONSES = {**ERROR_RESPONSES, 200: {"model": ChatCompletion, "content": {"text/event-stream": {}},
                                           "description": "一次给完 (JSON)，或 stream=true 时的 server-sent events"}}


def validation_error(errors: list[dict]) -> ApiError:
    """FastAPI/pydantic 的校验错误列表 → 一个 400 ApiError（只报第一个问题，像 OpenAI 一样）。"""
    err = errors[0]
    loc = [p for p in err.get("loc", ()) if p != "body"]
    if err.get("type") == "json_invalid":
        return ApiError(400, f"请求体不是合法的 JSON (malformed JSON)：{err.get('ctx', {}).get('error', err['msg'])}。",
                        code="invalid_json")
    # ("messages", 0, "role") → "messages[0].role"；str | list 这类联合类型会多出一层类型名，去掉
    loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "list")))]
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
    if err.get("type") == "literal_error" and loc[-1:] == ["role"]:
        return ApiError(400, f"{param}: 不认识的角色 (unknown role) {err.get('input')!r}；"
                        f"只能是 {'、'.join(ROLES)}。", param)
    if len(loc) >= 3 and loc[0] == "messages" and loc[2] == "content":
        param = f"messages[{loc[1]}].content"
        return ApiError(400, f"{param}: 必须是文字 (string)，或文字片段的列表 [{{\"type\": \"text\", \"text\": ...}}]；"
                        "这个模型只认文字。", param)
    if param is None:
        return ApiError(400, "请求体必须是一个 JSON 对象 (object)，至少包含 messages；"
                        f"{err['msg'].removeprefix('Value error, ')}。")
    return ApiError(400, f"参数 {param} 无效 (invalid)：{err['msg'].removeprefix('Value error, ')}。", param)
