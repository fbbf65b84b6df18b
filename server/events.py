"""The event vocabulary shared by the Harmony decoder, the pipeline and the assemblers.

The decoder turns generated tokens into these events; ``assemble.to_chunks`` turns them into
stream chunks and ``assemble.collect`` folds them into one message, so both modes see the same
sequence. Every event names the choice it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class ReasoningDelta:
    choice: int
    text: str


@dataclass(slots=True, frozen=True)
class ContentDelta:
    choice: int
    text: str


@dataclass(slots=True, frozen=True)
class ToolCallStart:
    """A new tool call: ``index`` counts tool calls within the choice, from 0."""

    choice: int
    index: int
    id: str
    name: str


@dataclass(slots=True, frozen=True)
class ToolCallArgumentsDelta:
    choice: int
    index: int
    text: str


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int


@dataclass(slots=True, frozen=True)
class Finish:
    """The end of one choice. ``reason`` is an OpenAI finish_reason: stop, length or tool_calls."""

    choice: int
    reason: str
    usage: Usage


Event = ReasoningDelta | ContentDelta | ToolCallStart | ToolCallArgumentsDelta | Finish
