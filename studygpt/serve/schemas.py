"""API 的数据形状 (schemas)：OpenAI 兼容的请求体，以及 OpenAI 式的错误体。

请求体用 pydantic 校验：类型不对、取值越界都变成 400 错误，错误体和 OpenAI 的一样：
    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages[0].role", "code": null}}
所以官方 `openai` 客户端会把它变成 `openai.BadRequestError`，程序能照常处理。

不认识的字段（tools、response_format……）直接忽略，和多数兼容服务器一样；认识的字段必须对。
认识的字段按严格模式 (strict) 校验：和 /openapi.json 写的类型一致，`"top_logprobs": false`、`"max_tokens": "5"`
不会被悄悄转换成 0 和 5（模糊测试找到的：描述说是整数，服务器却收下了布尔值）。
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

IGNORED_ROLES = ("system", "developer")  # 接受但不使用：小模型训练时从没见过系统提示 (system prompt)


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


class Message(BaseModel):
    model_config = STRICT
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None  # OpenAI 的可选字段；接受，不使用

    def text(self) -> str:
        """消息的文字：字符串原样返回，片段列表就把各段文字连起来。"""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool = False  # 流的最后多发一个只有 usage 的块 (chunk)


class ChatRequest(BaseModel):
    """POST /v1/chat/completions 的请求体。None 表示"用服务器的默认值"。"""
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str | None = None  # 只服务一个模型：任何名字都接受，回答里写服务器的模型名
    messages: list[Message] = Field(min_length=1)
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

    def conversation(self) -> tuple[list[str], str]:
        """messages → (history, user_text)：history 是成对的 [用户, 助手, …]，user_text 是最后一句用户的话。

        system / developer 消息被接受但忽略（见 IGNORED_ROLES）；其余必须用户、助手交替，并以用户结尾。
        """
        turns = [(i, m) for i, m in enumerate(self.messages) if m.role not in IGNORED_ROLES]
        if not turns:
            raise ApiError(400, "messages 里没有 user 消息 (no user message)；至少要有一条 role=user 的消息。",
                           "messages")
        for k, (i, m) in enumerate(turns):
            expected = "user" if k % 2 == 0 else "assistant"
            if m.role != expected:
                raise ApiError(400, f"messages[{i}] 的 role 是 {m.role}，这里应该是 {expected}：除 system 外，"
                               "消息必须 user、assistant 交替，从 user 开始 (roles must alternate).",
                               f"messages[{i}].role")
        if turns[-1][1].role != "user":
            raise ApiError(400, "最后一条消息必须是 user (the last message must be from the user)。", "messages")
        texts = [m.text() for _, m in turns]
        return texts[:-1], texts[-1]


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


class ReplyMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: ReplyMessage
    finish_reason: Literal["stop", "length", "cancelled"]


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
                        "只能是 system、developer、user、assistant。", param)
    if len(loc) >= 3 and loc[0] == "messages" and loc[2] == "content":
        param = f"messages[{loc[1]}].content"
        return ApiError(400, f"{param}: 必须是文字 (string)，或文字片段的列表 [{{\"type\": \"text\", \"text\": ...}}]；"
                        "这个模型只认文字。", param)
    if param is None:
        return ApiError(400, "请求体必须是一个 JSON 对象 (object)，至少包含 messages；"
                        f"{err['msg'].removeprefix('Value error, ')}。")
    return ApiError(400, f"参数 {param} 无效 (invalid)：{err['msg'].removeprefix('Value error, ')}。", param)
