"""Build responses from pipeline events: ``to_chunks`` for streams, ``collect`` for JSON.

Both read the same event batches, so a stream's concatenated deltas always equal the
non-stream message. Stream chunks are plain dicts serialised with orjson (the hot path);
their shape is ``schemas.chat_response.ChatCompletionChunk``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson

from server.events import (
    ContentDelta,
    Event,
    Finish,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
)
from server.pipeline import Completion


def reasoning_fields(mode: str, include: bool) -> tuple[str, ...]:
    """Message fields that carry reasoning: both names by default (see README)."""
    if not include:
        return ()
    return ("reasoning_content", "reasoning") if mode == "both" else (mode,)


def usage_dict(usages: list[Usage]) -> dict:
    prompt = usages[0].prompt_tokens if usages else 0
    completion = sum(u.completion_tokens for u in usages)
    reasoning = sum(u.reasoning_tokens for u in usages)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": reasoning}}


def _delta(event: Event, fields: tuple[str, ...]) -> dict | None:
    """The chunk delta for one event (None: nothing to send)."""
    if isinstance(event, ContentDelta):
        return {"content": event.text}
    if isinstance(event, ReasoningDelta):
        return {name: event.text for name in fields} or None
    if isinstance(event, ToolCallStart):
        return {"tool_calls": [{"index": event.index, "id": event.id, "type": "function",
                                "function": {"name": event.name, "arguments": ""}}]}
    return {"tool_calls": [{"index": event.index, "function": {"arguments": event.text}}]}


def _coalesce(batch: list[Event]) -> list[Event]:
    """Merge adjacent text deltas of the same kind, choice and tool call into one."""
    merged: list[Event] = []
    for event in batch:
        last = merged[-1] if merged else None
        if (type(event) is type(last) and isinstance(event, (ContentDelta, ReasoningDelta))
                and event.choice == last.choice):
            merged[-1] = type(event)(event.choice, last.text + event.text)
        elif (isinstance(event, ToolCallArgumentsDelta) and isinstance(last, ToolCallArgumentsDelta)
              and (event.choice, event.index) == (last.choice, last.index)):
            merged[-1] = ToolCallArgumentsDelta(event.choice, event.index, last.text + event.text)
        else:
            merged.append(event)
    return merged


async def to_chunks(completion: Completion, batches: AsyncIterator[list[Event]],
                    fields: tuple[str, ...]) -> AsyncIterator[bytes]:
    """Serialized ChatCompletionChunk objects; the usage chunk last when asked for."""
    head = {"id": completion.id, "object": "chat.completion.chunk",
            "created": completion.created, "model": completion.model}
    started: set[int] = set()
    usages: list[Usage] = []
    async for batch in batches:
        out = []
        for event in _coalesce(batch):
            if isinstance(event, Finish):
                usages.append(event.usage)
                delta, finish = {}, event.reason
            else:
                delta, finish = _delta(event, fields), None
                if delta is None:
                    continue
            if event.choice not in started:
                started.add(event.choice)
                delta = {"role": "assistant", **delta}
            choice = {"index": event.choice, "delta": delta, "logprobs": None,
                      "finish_reason": finish}
            out.append(orjson.dumps({**head, "choices": [choice]}))
        if out:
            yield b"".join(b"data: " + chunk + b"\n\n" for chunk in out)
    if completion.include_usage:
        yield b"data: " + orjson.dumps({**head, "choices": [], "usage": usage_dict(usages)}) + b"\n\n"


@dataclass(slots=True)
class _Message:
    reasoning: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    finish: Finish | None = None


async def collect(completion: Completion, batches: AsyncIterator[list[Event]],
                  fields: tuple[str, ...]) -> dict:
    """The ChatCompletion object: a fold over the same events a stream is built from."""
    choices = [_Message() for _ in range(completion.n)]
    async for batch in batches:
        for event in batch:
            message = choices[event.choice]
            if isinstance(event, ContentDelta):
                message.content.append(event.text)
            elif isinstance(event, ReasoningDelta):
                message.reasoning.append(event.text)
            elif isinstance(event, ToolCallStart):
                message.tool_calls.append({"id": event.id, "type": "function",
                                           "function": {"name": event.name, "arguments": ""}})
            elif isinstance(event, ToolCallArgumentsDelta):
                message.tool_calls[event.index]["function"]["arguments"] += event.text
            else:
                message.finish = event
    return {
        "id": completion.id, "object": "chat.completion", "created": completion.created,
        "model": completion.model,
        "choices": [_choice(i, m, fields) for i, m in enumerate(choices)],
        "usage": usage_dict([m.finish.usage for m in choices if m.finish]),
    }


def _choice(index: int, message: _Message, fields: tuple[str, ...]) -> dict:
    reasoning = "".join(message.reasoning) or None
    content = "".join(message.content)  # with tool calls, only a preamble; none: null
    body: dict = {"role": "assistant",
                  "content": content if content or not message.tool_calls else None}
    body.update({name: reasoning for name in fields})
    body["tool_calls"] = message.tool_calls or None
    body["refusal"] = None
    finish = message.finish.reason if message.finish else "stop"
    return {"index": index, "message": body, "logprobs": None, "finish_reason": finish}
