"""POST /v1/completions request body (openai-python: ``completion_create_params``): raw text in,
raw text out, no Harmony rendering."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.schemas.chat_request import ChatCompletionStreamOptionsParam

Prompt = str | list[str] | list[int] | list[list[int]]


class CompletionCreateParams(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    prompt: Prompt
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for this endpoint
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: ChatCompletionStreamOptionsParam | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    echo: bool | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    best_of: int | None = Field(None, ge=1)
    suffix: str | None = None
    user: str | None = None
