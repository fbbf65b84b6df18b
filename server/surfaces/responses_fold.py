"""The Responses fold: output items from the neutral events, and OpenAI's stream events.

Reasoning items carry ``reasoning_text`` content, messages ``output_text`` (with logprobs when
asked), function calls their raw JSON arguments. With ``streaming`` each change is also an
event with an increasing ``sequence_number``; the hot path (text deltas) writes its frames from
bytes made once per item.
"""

from __future__ import annotations

import orjson

from server.errors import APIError, ServerError
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
)
from server.sse import event_frame
from server.surfaces.common import coalesce, openai_logprobs
from server.surfaces.responses_input import new_id


class ResponseFold:
    """Output items from neutral events; Responses stream events when ``streaming``."""

    def __init__(self, exchange, streaming: bool) -> None:  # a ResponsesExchange
        self.exchange = exchange
        self.streaming = streaming
        self.output: list[dict] = []
        self.texts: list[list[str]] = []
        self.logprobs: list[list] = []  # per item: its tokens' logprobs (messages, if asked)
        self.frames: list[bytes] = []
        self.delta_frames: list[tuple[bytes, bytes, bytes]] = []  # per item, see _delta
        self.sequence = 0
        self.finish: Finish | None = None
        self.error: APIError | None = None

    def frame(self, kind: str, payload: dict) -> None:
        if self.streaming:
            payload["type"] = kind
            payload["sequence_number"] = self.sequence
            self.sequence += 1
            self.frames.append(event_frame(kind.encode(), payload))

    def take(self) -> bytes:
        frames, self.frames = self.frames, []
        return b"".join(frames)

    def feed(self, batch: list[Event]) -> None:
        for event in coalesce(batch):
            kind = type(event)
            if kind is ContentDelta or kind is ReasoningDelta or kind is ArgumentsDelta:
                self._delta(event)
            elif kind is ItemStart:
                self._start(event)
            elif kind is ItemEnd:
                self._end(event.item, "incomplete" if event.truncated else "completed")
            else:
                self.finish = event
                self.exchange.usages.append(event.usage)

    def _delta(self, event) -> None:
        """The hot path: the delta event's frame from bytes made once per item."""
        self.texts[event.item].append(event.text)
        logprobs = event.logprobs if type(event) is ContentDelta else None
        if logprobs is not None:
            self.logprobs[event.item] += logprobs
        if self.streaming:
            head, middle, tail = self.delta_frames[event.item]
            if logprobs is not None:
                tail = b',"logprobs":' + orjson.dumps(openai_logprobs(logprobs)) + b"}\n\n"
            self.frames.append(b"".join((head, str(self.sequence).encode(), middle,
                                         orjson.dumps(event.text), tail)))
            self.sequence += 1

    def _start(self, event: ItemStart) -> None:
        if event.kind is ItemKind.TOOL_CALL:
            item = {"id": new_id("fc"), "type": "function_call", "status": "in_progress",
                    "call_id": event.call_id, "name": event.name, "arguments": ""}
        elif event.kind is ItemKind.REASONING:
            item = {"id": new_id("rs"), "type": "reasoning", "status": "in_progress",
                    "summary": [], "content": []}
        else:
            item = {"id": new_id("msg"), "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []}
        self.output.append(item)
        self.texts.append([])
        self.logprobs.append([])
        index = len(self.output) - 1
        if self.streaming:
            self.delta_frames.append(_delta_frame_parts(item, index))
        self.frame("response.output_item.added", {"output_index": index, "item": dict(item)})
        part = _part(item, "")
        if part is not None:
            self.frame("response.content_part.added", {"item_id": item["id"],
                                                       "output_index": index,
                                                       "content_index": 0, "part": part})

    def _end(self, index: int, status: str = "completed") -> None:
        item = self.output[index]
        if item["status"] != "in_progress":
            return
        text = "".join(self.texts[index])
        item["status"] = status
        common = {"item_id": item["id"], "output_index": index}
        if item["type"] == "function_call":
            item["arguments"] = text
            self.frame("response.function_call_arguments.done", {**common, "arguments": text})
        else:
            part = _part(item, text)
            item["content"] = [part]
            if item["type"] == "message":
                part["logprobs"] = openai_logprobs(self.logprobs[index])
                self.frame("response.output_text.done", {**common, "content_index": 0,
                                                         "text": text,
                                                         "logprobs": part["logprobs"]})
            else:
                self.frame("response.reasoning_text.done", {**common, "content_index": 0,
                                                            "text": text})
            self.frame("response.content_part.done", {**common, "content_index": 0,
                                                      "part": dict(part)})
        self.frame("response.output_item.done", {"output_index": index, "item": dict(item)})

    def fail(self, error: APIError) -> None:
        self.error = error
        for index in range(len(self.output)):
            self._end(index, "incomplete")

    def final(self) -> dict:
        finish = self.finish
        if self.error is not None or finish is None:
            status = "failed"
        elif finish.reason is EndReason.LENGTH:
            status = "incomplete"
        else:
            status = "completed"
        error = self.error or (ServerError("the generation ended without a result")
                               if status == "failed" else None)
        return self.exchange.response(status, self.output, finish.usage if finish else None,
                                      error)


_DELTA_EVENTS = {"message": (b"response.output_text.delta", b',"content_index":0',
                             b',"logprobs":[]}'),
                 "reasoning": (b"response.reasoning_text.delta", b',"content_index":0', b"}"),
                 "function_call": (b"response.function_call_arguments.delta", b"", b"}")}


def _delta_frame_parts(item: dict, index: int) -> tuple[bytes, bytes, bytes]:
    """An item's delta event as bytes around its sequence number and its text: the same
    JSON the ``frame`` path writes, made once per item instead of once per delta."""
    kind, content_index, end = _DELTA_EVENTS[item["type"]]
    head = b"event: " + kind + b'\ndata: {"type":"' + kind + b'","sequence_number":'
    middle = (b',"item_id":' + orjson.dumps(item["id"]) + b',"output_index":'
              + str(index).encode() + content_index + b',"delta":')
    return head, middle, end + b"\n\n"


def _part(item: dict, text: str) -> dict | None:
    if item["type"] == "message":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    if item["type"] == "reasoning":
        return {"type": "reasoning_text", "text": text}
    return None
