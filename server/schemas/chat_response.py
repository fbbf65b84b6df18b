"""Response bodies (openai-python: ``ChatCompletion``, ``ChatCompletionChunk`` and parts).

These models document the contract in the OpenAPI schema and build non-stream responses;
stream chunks are written as plain dicts of the same shape (see assemble.py) for speed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

FinishReason = Literal["stop", "length", "tool_calls"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Function(_Out):
    name: str
    arguments: str


class ChatCompletionMessageToolCall(_Out):
    id: str
    type: Literal["function"] = "function"
    function: Function


class ChatCompletionMessage(_Out):
    """Reasoning is in ``reasoning_content`` and/or ``reasoning`` (server setting)."""

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None
    refusal: str | None = None


class Choice(_Out):
    index: int
    message: ChatCompletionMessage
    finish_reason: FinishReason
    logprobs: None = None


class CompletionTokensDetails(_Out):
    reasoning_tokens: int


class CompletionUsage(_Out):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails


class ChatCompletion(_Out):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage


class ChoiceDeltaToolCallFunction(_Out):
    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(_Out):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ChoiceDeltaToolCallFunction | None = None


class ChoiceDelta(_Out):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None


class ChunkChoice(_Out):
    index: int
    delta: ChoiceDelta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(_Out):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


class Model(_Out):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    max_model_len: int | None = None  # None while the engine is loading


class ModelList(_Out):
    object: Literal["list"] = "list"
    data: list[Model]
