"""POST /v1/responses request body (openai-python: ``ResponseCreateParams``) and its input items.

``input`` items and ``tools`` are parsed one by one by the adapter (server/surfaces/
responses_input.py), so that an unsupported item or tool type gets a 400 naming it
(``input.3.type``, ``tools.0.type``) rather than a union-validation dump.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # strict: JSON types as OpenAI checks them; unknown fields ignored (clients send extras)
    model_config = ConfigDict(extra="ignore", strict=True)


class ResponseInputText(_Model):
    type: Literal["input_text"]
    text: str


class ResponseOutputText(_Model):
    type: Literal["output_text"]
    text: str


class ResponseOutputRefusal(_Model):
    type: Literal["refusal"]
    refusal: str


class ResponseInputOther(_Model):
    """Images, files and audio: parsed so the error names them, then refused."""

    type: Literal["input_image", "input_file", "input_audio"]


ContentPart = Annotated[
    ResponseInputText | ResponseOutputText | ResponseOutputRefusal | ResponseInputOther,
    Field(discriminator="type")]


class EasyInputMessage(_Model):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None
    phase: Literal["commentary", "final_answer"] | None = None


class ResponseFunctionToolCall(_Model):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutput(_Model):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class ReasoningText(_Model):
    type: Literal["reasoning_text"]
    text: str


class SummaryText(_Model):
    type: Literal["summary_text"]
    text: str


class ResponseReasoningItem(_Model):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[SummaryText] = []
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: str | None = None


InputItem = EasyInputMessage | ResponseFunctionToolCall | FunctionCallOutput | ResponseReasoningItem
ITEM_TYPES: dict[str, type[_Model]] = {
    "message": EasyInputMessage, "function_call": ResponseFunctionToolCall,
    "function_call_output": FunctionCallOutput, "reasoning": ResponseReasoningItem}


class FunctionTool(_Model):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    parameters: dict | None = None
    strict: bool | None = None


class Reasoning(_Model):
    effort: str | None = None
    summary: str | None = None  # accepted; gpt-oss has no summarizer, so summary stays []
    generate_summary: str | None = None


class ResponseFormatText(_Model):
    type: Literal["text", "json_schema", "json_object"]
    name: str | None = Field(None, min_length=1, max_length=64)  # json_schema
    schema_: dict | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseTextConfig(_Model):
    format: ResponseFormatText | None = None
    verbosity: str | None = None


class ResponseCreateParams(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    text: ResponseTextConfig | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    stream: bool | None = False
    store: bool | None = True
    previous_response_id: str | None = None
    include: list[str] | None = None
    background: bool | None = None
    truncation: Literal["auto", "disabled"] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
