"""Anthropic Messages (``/v1/messages``): the exchange (request -> plan) and one fold for both
modes, so the anthropic SDK's ``messages.stream()`` final message equals the non-stream one.

Thinking: ``{"type": "enabled", "budget_tokens": B}`` shows gpt-oss's reasoning as ``thinking``
blocks and picks the reasoning effort from the budget (below 4,096 tokens low, below 16,384
medium, else high); ``adaptive`` (the model decides how much to think) shows it at the server's
default effort; ``disabled`` or no ``thinking`` hides it (gpt-oss still reasons, at the
server's default effort), as Anthropic returns no thinking blocks unless asked. A thinking
block's ``signature`` is a digest of its text: clients send blocks back with it, and nothing
here needs to verify it (history is re-rendered from the text).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator

from server import plan as p
from server.config import Settings
from server.errors import APIError, anthropic_body
from server.events import (
    ArgumentsDelta,
    ContentDelta,
    EndReason,
    Event,
    Finish,
    ItemEnd,
    ItemKind,
    ItemStart,
    ReasoningDelta,
    Usage,
)
from server.pipeline import Job
from server.schemas.messages import MessageCountTokensParams, MessageCreateParams
from server.sse import event_frame
from server.surfaces.common import coalesce
from server.surfaces.messages_input import constraint, conversation

_STOP_REASONS = {EndReason.TURN_END: "end_turn", EndReason.MALFORMED: "end_turn",
                 EndReason.TOOL_CALL: "tool_use", EndReason.LENGTH: "max_tokens",
                 EndReason.STOP_STRING: "stop_sequence"}


def effort_of(thinking, default: str) -> str:
    if thinking is None or thinking.type != "enabled" or not thinking.budget_tokens:
        return default
    budget = thinking.budget_tokens
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def count_plan(request: MessageCountTokensParams, settings: Settings) -> p.Plan:
    """The plan whose prompt ``count_tokens`` counts: the same as the create request's, with
    the same checks."""
    chat = conversation(request, effort_of(request.thinking, settings.reasoning_effort))
    return p.Plan(model=request.model, input_param="messages", conversation=chat,
                  constraint=constraint(request, chat.tools, settings))


def signature(thinking: str) -> str:
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def _tool_input(arguments: str) -> dict:
    """A call's arguments as the object ``tool_use.input`` must be ({} if not a JSON object:
    the stream sent the raw text as ``input_json_delta``)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class MessagesExchange:
    done = b""

    def __init__(self, request: MessageCreateParams, settings: Settings) -> None:
        self.request = request
        self.settings = settings
        self.id = "msg_" + secrets.token_hex(12)
        self.stream = bool(request.stream)
        self.usages: list[Usage] = []
        self.show_thinking = (request.thinking is not None
                              and request.thinking.type in ("enabled", "adaptive"))

    def plan(self) -> p.Plan:
        r = self.request
        plan = count_plan(r, self.settings)
        plan.sampling = p.Sampling(max_tokens=r.max_tokens, temperature=r.temperature,
                                   top_p=r.top_p, top_k=r.top_k)
        plan.stop = list(r.stop_sequences or ())
        plan.stop_param = "stop_sequences"
        plan.show_reasoning = self.show_thinking
        return plan

    def error_frame(self, error: APIError) -> bytes:
        return event_frame(b"error", anthropic_body(error))

    def message(self, content: list[dict], finish: Finish | None, prompt_tokens: int) -> dict:
        usage = finish.usage if finish else None
        return {"id": self.id, "type": "message", "role": "assistant",
                "model": self.request.model, "content": content,
                "stop_reason": _STOP_REASONS[finish.reason] if finish else None,
                "stop_sequence": finish.stop_string if finish else None,
                "usage": {"input_tokens": prompt_tokens,
                          "output_tokens": usage.completion_tokens if usage else 0,
                          "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": usage.cached_tokens if usage else 0}}

    async def frames(self, job: Job, batches: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
        fold = _Fold(self, streaming=True)
        first = await anext(batches)  # a failure here keeps its HTTP status
        fold.frame("message_start", {"message": self.message([], None, len(job.prompt))})
        fold.frame("ping", {})
        fold.feed(first)
        yield fold.take()
        async for batch in batches:  # a failure from here on is an `event: error` frame
            fold.feed(batch)
            if fold.frames:
                yield fold.take()
        finish = fold.finish
        fold.frame("message_delta", {
            "delta": {"stop_reason": _STOP_REASONS[finish.reason],
                      "stop_sequence": finish.stop_string},
            "usage": {"output_tokens": finish.usage.completion_tokens,
                      "cache_read_input_tokens": finish.usage.cached_tokens}})
        fold.frame("message_stop", {})
        yield fold.take()

    async def collect(self, job: Job, batches: AsyncIterator[list[Event]]) -> dict:
        fold = _Fold(self, streaming=False)
        async for batch in batches:
            fold.feed(batch)
        return self.message(fold.blocks, fold.finish, len(job.prompt))


class _Fold:
    """Content blocks from neutral events; Anthropic stream events when ``streaming``."""

    def __init__(self, exchange: MessagesExchange, streaming: bool) -> None:
        self.exchange = exchange
        self.streaming = streaming
        self.blocks: list[dict] = []
        self.texts: list[list[str]] = []
        self.index_of: dict[int, int | None] = {}  # item -> block index (None: hidden)
        self.frames: list[bytes] = []
        self.finish: Finish | None = None

    def frame(self, kind: str, payload: dict) -> None:
        if self.streaming:
            self.frames.append(event_frame(kind.encode(), {"type": kind, **payload}))

    def take(self) -> bytes:
        frames, self.frames = self.frames, []
        return b"".join(frames)

    def feed(self, batch: list[Event]) -> None:
        for event in coalesce(batch):
            kind = type(event)
            if kind is ContentDelta:
                self._delta(event, "text_delta", "text")
            elif kind is ReasoningDelta:
                self._delta(event, "thinking_delta", "thinking")
            elif kind is ArgumentsDelta:
                self._delta(event, "input_json_delta", "partial_json")
            elif kind is ItemStart:
                self._start(event)
            elif kind is ItemEnd:
                self._end(event.item)
            else:
                self.finish = event
                self.exchange.usages.append(event.usage)

    def _delta(self, event, kind: str, field: str) -> None:
        index = self.index_of[event.item]
        if index is None:
            return
        self.texts[index].append(event.text)
        self.frame("content_block_delta", {"index": index,
                                           "delta": {"type": kind, field: event.text}})

    def _start(self, event: ItemStart) -> None:
        if event.kind is ItemKind.REASONING and not self.exchange.show_thinking:
            self.index_of[event.item] = None
            return
        if event.kind is ItemKind.TOOL_CALL:
            block = {"type": "tool_use", "id": "toolu_" + event.call_id.removeprefix("call_"),
                     "name": event.name, "input": {}}
        elif event.kind is ItemKind.REASONING:
            block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            block = {"type": "text", "text": ""}
        index = self.index_of[event.item] = len(self.blocks)
        self.blocks.append(block)
        self.texts.append([])
        self.frame("content_block_start", {"index": index, "content_block": dict(block)})

    def _end(self, item: int) -> None:
        index = self.index_of[item]
        if index is None:
            return
        block, text = self.blocks[index], "".join(self.texts[index])
        if block["type"] == "tool_use":
            block["input"] = _tool_input(text)
        elif block["type"] == "thinking":
            block["thinking"], block["signature"] = text, signature(text)
            self.frame("content_block_delta", {"index": index, "delta": {
                "type": "signature_delta", "signature": block["signature"]}})
        else:
            block["text"] = text
        self.frame("content_block_stop", {"index": index})

