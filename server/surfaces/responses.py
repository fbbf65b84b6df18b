"""OpenAI Responses API: the exchange (request -> plan) and one fold for both modes.

``_Fold`` turns the pipeline's items into Responses output items (``reasoning`` with
``reasoning_text`` content, ``message`` with ``output_text``, ``function_call``) and, when
streaming, into OpenAI's event sequence with ``event:`` lines and a strictly increasing
``sequence_number``. The non-stream body is the same fold without frames, so the stream's final
``response.completed`` equals it field by field. The first batch of events is pulled before
``response.created`` is sent, so failures before any output keep their HTTP status; a failure
after it is a ``response.failed`` event (non-stream: a response with ``status: failed``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import orjson

from server import plan as p
from server.config import Settings
from server.constraint import Constraint, final_grammar, plan_constraint
from server.errors import APIError, InvalidRequestError, ServerError
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
from server.limits import check_count
from server.pipeline import Job
from server.schemas.responses import ResponseCreateParams
from server.sse import event_frame
from server.store import ResponseStore, StoredResponse, StoreUnavailableError
from server.surfaces.common import coalesce, openai_logprobs, resolve_effort
from server.surfaces.responses_input import (
    add_items,
    new_id,
    parse_items,
    parse_tools,
    stored_item,
)

log = logging.getLogger(__name__)

# `include` values: honoured (reasoning is always returned as plain reasoning_text content, which
# is what the encrypted form would carry back), or about tools this server does not run.
LOGPROBS = "message.output_text.logprobs"
_INCLUDE_OK = {LOGPROBS, "reasoning.encrypted_content", "file_search_call.results",
               "web_search_call.results", "web_search_call.action.sources",
               "code_interpreter_call.outputs", "computer_call_output.output.image_url",
               "message.input_image.image_url"}


def _refuse_unsupported(request: ResponseCreateParams) -> None:
    if request.background:
        raise InvalidRequestError("background responses are not supported: send the request "
                                  "without background (stream it to see progress)",
                                  param="background")
    choice = request.tool_choice
    if isinstance(choice, dict) and choice.get("type") != "function":
        raise InvalidRequestError(f"tool_choice type '{choice.get('type')}' is not supported: "
                                  "use auto, none, required or a function",
                                  param="tool_choice.type")
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        raise InvalidRequestError(f"tool_choice '{choice}' is not one of auto, none, required",
                                  param="tool_choice")
    for i, value in enumerate(request.include or ()):
        if value not in _INCLUDE_OK:
            raise InvalidRequestError(f"include value '{value}' is not supported",
                                      param=f"include.{i}")


def _constraint(request: ResponseCreateParams, tools: list[p.Tool],
                settings: Settings) -> Constraint | None:
    fmt = request.text.format if request.text else None
    final = final_grammar(fmt.type if fmt else None, fmt.schema_ if fmt else None,
                          fmt.strict if fmt else None, "text.format.schema", settings)
    choice = request.tool_choice
    named = choice.get("name") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and not isinstance(named, str):
        raise InvalidRequestError("tool_choice.name must name a function", param="tool_choice.name")
    return plan_constraint(tools, settings, final=final, required=choice == "required",
                           named=named, named_param="tool_choice.name")


def usage_dict(usage: Usage | None) -> dict | None:
    if usage is None:
        return None
    return {"input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens,
                                     "cache_write_tokens": 0},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}


class ResponsesExchange:
    done = b""  # OpenAI ends a Responses stream with its terminal event, no [DONE]

    def __init__(self, request: ResponseCreateParams, settings: Settings, store: ResponseStore,
                 owner: str, previous: StoredResponse | None) -> None:
        self.request = request
        self.settings = settings
        self.store = store
        self.owner = owner
        self.previous = previous
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.stream = bool(request.stream)
        self.usages: list[Usage] = []
        self.effort = settings.reasoning_effort
        self.input_items: list[dict] = []

    def plan(self) -> p.Plan:
        request = self.request
        _refuse_unsupported(request)
        self.effort = resolve_effort(request.reasoning.effort if request.reasoning else None,
                                     "reasoning.effort", None, "", self.settings.reasoning_effort)
        items = parse_items(request.input)
        context = parse_items(self.previous.context) if self.previous else []
        check_count(len(context) + len(items), self.settings.max_messages, "input")
        tools = [] if request.tool_choice == "none" else [
            p.Tool(t.name, t.description or "", t.parameters, t.strict)
            for t in parse_tools(request.tools)]
        conversation = p.Conversation(self.effort, tools=tools)
        if request.instructions:
            conversation.instructions.append(request.instructions)
        names: dict[str, str] = {}
        add_items(conversation, context, names, "previous_response_id")
        add_items(conversation, items, names)
        self.input_items = [stored_item(item) for item in items]
        return p.Plan(model=request.model, conversation=conversation,
                      constraint=_constraint(request, tools, self.settings),
                      sampling=p.Sampling(max_tokens=request.max_output_tokens,
                                          temperature=request.temperature, top_p=request.top_p,
                                          logprobs=(request.top_logprobs or 0)
                                          if LOGPROBS in (request.include or ()) else None),
                      input_param="input")

    def error_frame(self, error: APIError) -> bytes:  # used only if the fold itself fails
        return event_frame(b"error", {"type": "error", "code": error.code,
                                      "message": error.message, "param": error.param,
                                      "sequence_number": 0})

    def response(self, status: str, output: list[dict], usage: Usage | None,
                 error: APIError | None = None) -> dict:
        """The Response object in any state (a snapshot while streaming)."""
        r = self.request
        return {
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "background": False,
            "error": None if error is None else {"code": error.code, "message": error.message},
            "incomplete_details": ({"reason": "max_output_tokens"} if status == "incomplete"
                                   else None),
            "instructions": r.instructions, "max_output_tokens": r.max_output_tokens,
            "max_tool_calls": r.max_tool_calls, "model": r.model, "output": output,
            "parallel_tool_calls": r.parallel_tool_calls is not False,
            "previous_response_id": r.previous_response_id,
            "reasoning": {"effort": self.effort, "summary": None},
            "store": r.store is not False,
            "temperature": 1.0 if r.temperature is None else r.temperature,
            "text": {"format": (r.text.format.model_dump(by_alias=True, exclude_none=True)
                                if r.text and r.text.format else {"type": "text"})},
            "tool_choice": r.tool_choice or "auto",
            "tools": r.tools or [], "top_p": 1.0 if r.top_p is None else r.top_p,
            "truncation": r.truncation or "disabled", "usage": usage_dict(usage),
            "user": r.user, "metadata": r.metadata or {},
        }

    async def frames(self, job: Job, batches: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
        fold = _Fold(self, streaming=True)
        first = await anext(batches)  # a failure here keeps its HTTP status
        fold.frame("response.created", {"response": self.response("in_progress", [], None)})
        fold.frame("response.in_progress", {"response": self.response("in_progress", [], None)})
        fold.feed(first)
        yield fold.take()
        async for frames in self._fold_rest(fold, batches, streaming=True):
            yield frames

    async def _fold_rest(self, fold: _Fold, batches, streaming: bool):
        """Fold the remaining batches; yields frames when streaming. Ends with the terminal
        event and stores the response."""
        try:
            async for batch in batches:
                fold.feed(batch)
                if streaming and fold.frames:
                    yield fold.take()
        except APIError as exc:
            fold.fail(exc)
        except Exception:
            log.exception("a response failed while generating")
            fold.fail(ServerError("the server failed while generating"))
        final = fold.final()
        if streaming:
            terminal = {"completed": "response.completed", "incomplete": "response.incomplete",
                        "failed": "response.failed"}[final["status"]]
            fold.frame(terminal, {"response": final})
            yield fold.take()
        await self._save(final)

    async def collect(self, job: Job, batches: AsyncIterator[list[Event]]) -> dict:
        fold = _Fold(self, streaming=False)
        fold.feed(await anext(batches))  # a failure here keeps its HTTP status
        async for _ in self._fold_rest(fold, batches, streaming=False):
            pass
        return fold.final()

    async def _save(self, response: dict) -> None:
        if self.request.store is False:
            return
        context = [*(self.previous.context if self.previous else []), *self.input_items,
                   *response["output"]]
        try:
            await self.store.put(self.owner, self.id, StoredResponse(
                response, self.input_items, context))
        except StoreUnavailableError as exc:
            log.warning("response %s was not stored: %s", self.id, exc)


class _Fold:
    """Output items from neutral events; Responses stream events when ``streaming``."""

    def __init__(self, exchange: ResponsesExchange, streaming: bool) -> None:
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
