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

from server import plan as p
from server.config import Settings
from server.errors import APIError, ServerError
from server.events import (
    Event,
    Usage,
)
from server.limits import check_count
from server.pipeline import Job
from server.schemas.responses import ResponseCreateParams
from server.sse import event_frame
from server.store import ResponseStore, StoredResponse, StoreUnavailableError
from server.surfaces.common import resolve_effort
from server.surfaces.responses_fold import ResponseFold
from server.surfaces.responses_input import (
    LOGPROBS,
    add_items,
    constraint,
    new_id,
    parse_items,
    parse_tools,
    refuse_unsupported,
    stored_item,
)

log = logging.getLogger(__name__)

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
        refuse_unsupported(request)
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
                      constraint=constraint(request, tools, self.settings),
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
        fold = ResponseFold(self, streaming=True)
        first = await anext(batches)  # a failure here keeps its HTTP status
        fold.frame("response.created", {"response": self.response("in_progress", [], None)})
        fold.frame("response.in_progress", {"response": self.response("in_progress", [], None)})
        fold.feed(first)
        yield fold.take()
        async for frames in self._fold_rest(fold, batches, streaming=True):
            yield frames

    async def _fold_rest(self, fold: ResponseFold, batches, streaming: bool):
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
        fold = ResponseFold(self, streaming=False)
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
