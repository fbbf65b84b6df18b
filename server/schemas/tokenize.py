"""POST /tokenize: the rendered Harmony prompt of a chat request, for counting and bug reports."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.schemas.chat_request import (
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
    CompletionCreateParams,
    ReasoningConfig,
)


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatCompletionMessageParam] = Field(min_length=1)
    tools: list[ChatCompletionToolParam] | None = None
    reasoning_effort: str | None = None
    reasoning: ReasoningConfig | None = None

    def as_chat_request(self) -> CompletionCreateParams:
        return CompletionCreateParams(model=self.model or "", messages=self.messages,
                                      tools=self.tools, reasoning_effort=self.reasoning_effort,
                                      reasoning=self.reasoning)


class TokenizeResponse(BaseModel):
    count: int
    max_model_len: int
    tokens: list[int]
    prompt: str  # the rendered text, special tokens visible
