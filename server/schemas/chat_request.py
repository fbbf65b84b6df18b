"""POST /v1/chat/completions request body (openai-python: ``CompletionCreateParams``).

Field ranges that OpenAI documents are enforced here; limits an operator sets (n, stop count,
tool count, ...) are checked in ``server.limits``. Unknown top-level fields are accepted, as
OpenAI clients send vendor extensions, and logged by the route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


# strict: JSON types as OpenAI checks them ("n": "3" or "stream": "yes" is a 400, not coerced)
class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class ChatCompletionContentPartText(_Model):
    type: Literal["text"]
    text: str


class ChatCompletionContentPartOther(_Model):
    """Image, audio and file parts: parsed so the error names them, then rejected."""

    type: Literal["image_url", "input_audio", "file", "refusal"]


ContentPart = Annotated[
    ChatCompletionContentPartText | ChatCompletionContentPartOther, Field(discriminator="type")]
Content = str | list[ContentPart]


class FunctionCall(_Model):
    name: str = Field(min_length=1)
    arguments: str = ""


class ChatCompletionMessageToolCallParam(_Model):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatCompletionSystemMessageParam(_Model):
    role: Literal["system"]
    content: Content
    name: str | None = None


class ChatCompletionDeveloperMessageParam(_Model):
    role: Literal["developer"]
    content: Content
    name: str | None = None


class ChatCompletionUserMessageParam(_Model):
    role: Literal["user"]
    content: Content
    name: str | None = None


class ChatCompletionAssistantMessageParam(_Model):
    role: Literal["assistant"]
    content: Content | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ChatCompletionMessageToolCallParam] | None = None
    name: str | None = None
    refusal: str | None = None


class ChatCompletionToolMessageParam(_Model):
    role: Literal["tool"]
    content: Content
    tool_call_id: str
    name: str | None = None  # not in OpenAI's schema; some clients send it


ChatCompletionMessageParam = Annotated[
    ChatCompletionSystemMessageParam
    | ChatCompletionDeveloperMessageParam
    | ChatCompletionUserMessageParam
    | ChatCompletionAssistantMessageParam
    | ChatCompletionToolMessageParam,
    Field(discriminator="role"),
]


class FunctionDefinition(_Model):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    parameters: dict | None = None
    strict: bool | None = None


class ChatCompletionToolParam(_Model):
    type: Literal["function"]
    function: FunctionDefinition


class ChatCompletionNamedToolChoiceParam(_Model):
    type: Literal["function"]
    function: dict


ToolChoice = Literal["auto", "none", "required"] | ChatCompletionNamedToolChoiceParam


class ChatCompletionStreamOptionsParam(_Model):
    include_usage: bool | None = None


class ReasoningConfig(_Model):
    """OpenRouter's ``reasoning`` object; only ``effort`` and ``exclude`` change anything here."""

    effort: str | None = None
    exclude: bool | None = None
    enabled: bool | None = None
    max_tokens: int | None = None


class JSONSchema(_Model):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Model):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchema | None = None


class CompletionCreateParams(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    messages: list[ChatCompletionMessageParam] = Field(min_length=1)
    tools: list[ChatCompletionToolParam] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    reasoning: ReasoningConfig | None = None
    include_reasoning: bool | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    n: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: ChatCompletionStreamOptionsParam | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    store: bool | None = None
