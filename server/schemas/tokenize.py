"""POST /tokenize: the rendered Harmony prompt of a chat request, for counting and bug reports."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.schemas.chat_request import (
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
    CompletionCreateParams,
    ReasoningConfig,
    ToolChoice,
)


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = None
    messages: list[ChatCompletionMessageParam] = Field(min_length=1)
    tools: list[ChatCompletionToolParam] | None = None
    tool_choice: ToolChoice | None = None
    reasoning_effort: str | None = None
    reasoning: ReasoningConfig | None = None

    def as_chat_request(self, default_model: str) -> CompletionCreateParams:
        """The chat request whose prompt this is (``model`` may be left out here)."""
        return CompletionCreateParams(model=self.model or default_model, messages=self.messages,
                                      tools=self.tools, tool_choice=self.tool_choice,
                                      reasoning_effort=self.reasoning_effort,
                                      reasoning=self.reasoning)


class TokenizeResponse(BaseModel):
    count: int
    max_model_len: int
    tokens: list[int]
    prompt: str  # the rendered text, special tokens visible
