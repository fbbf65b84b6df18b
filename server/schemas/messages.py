"""POST /v1/messages and /v1/messages/count_tokens request bodies (anthropic-sdk-python:
``MessageCreateParams``, ``MessageCountTokensParams``) and their content blocks.

``cache_control`` is accepted wherever Anthropic allows it and has no effect here: vLLM's prefix
cache reuses any repeated prefix by itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # strict: JSON types as Anthropic checks them; unknown fields ignored (clients send extras)
    model_config = ConfigDict(extra="ignore", strict=True)


class TextBlockParam(_Model):
    type: Literal["text"]
    text: str
    cache_control: dict | None = None


class ToolUseBlockParam(_Model):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]
    cache_control: dict | None = None


class UnsupportedBlockParam(_Model):
    """Images, documents and server-tool blocks: parsed so the error names them, then refused."""

    type: Literal["image", "document", "search_result", "server_tool_use",
                  "web_search_tool_result", "container_upload", "mcp_tool_use",
                  "mcp_tool_result"]


class ToolResultBlockParam(_Model):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[Annotated[TextBlockParam | UnsupportedBlockParam,
                                  Field(discriminator="type")]] = ""
    is_error: bool | None = None
    cache_control: dict | None = None


class ThinkingBlockParam(_Model):
    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlockParam(_Model):
    type: Literal["redacted_thinking"]
    data: str


ContentBlockParam = Annotated[
    TextBlockParam | ToolUseBlockParam | ToolResultBlockParam | ThinkingBlockParam
    | RedactedThinkingBlockParam | UnsupportedBlockParam, Field(discriminator="type")]


class MessageParam(_Model):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlockParam]


class ThinkingConfig(_Model):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=1)


class ToolChoice(_Model):
    type: Literal["auto", "none", "any", "tool"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(_Model):
    user_id: str | None = None


class MessageCountTokensParams(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[TextBlockParam] | None = None
    tools: list[dict[str, Any]] | None = None  # parsed by the adapter, to name server tools
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None


class MessageCreateParams(MessageCountTokensParams):
    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    metadata: Metadata | None = None
    stream: bool | None = False
    service_tier: str | None = None
