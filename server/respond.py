"""The one route helper every surface goes through.

It owns what is the same for every API: refusing work while loading or draining, building and
checking the plan, admission, pulling the first frame before the 200 (so early failures keep
their status), client disconnects, and cleanup. A surface brings an *exchange*: its request,
its adapter to the plan, and its two folds over the pipeline's events.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

import orjson
from fastapi import Request
from fastapi.responses import Response

from server.errors import APIError
from server.events import Event, Usage
from server.pipeline import Job
from server.plan import Plan
from server.sse import DisconnectWatch, EventStreamResponse

log = logging.getLogger(__name__)


class Exchange(Protocol):
    id: str  # the response id the client sees (engine requests are named after it)
    stream: bool
    usages: list[Usage]  # filled by the folds, for the access log
    done: bytes  # what ends a stream (may be empty)

    def plan(self) -> Plan: ...

    def frames(self, job: Job, batches: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]: ...

    async def collect(self, job: Job, batches: AsyncIterator[list[Event]]) -> dict: ...

    def error_frame(self, error: APIError) -> bytes: ...


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: dict) -> bytes:
        return orjson.dumps(content)


async def respond(request: Request, exchange: Exchange) -> Response:
    state = request.app.state
    # before building the plan: while loading, the context length is unknown (not 0)
    state.lifecycle.refuse_unless_serving()
    scope_state = request.scope["state"]
    plan, api_key = exchange.plan(), scope_state.get("api_key")
    await state.pipeline.prerender(plan, api_key)  # a long first render yields to the loop
    job = state.pipeline.prepare(plan, exchange.id, api_key)
    if state.settings.log_prompts:  # off by default: prompts and outputs are user data
        log.info("prompt", extra={"response_id": job.id,
                                  "prompt": state.harmony.decode_text(job.prompt)})
    scope_state["prompt_tokens"] = sum(len(prompt) for prompt in job.prompts)
    cleanup = contextlib.AsyncExitStack()
    async with cleanup:
        await cleanup.enter_async_context(state.lifecycle.admit())
        cleanup.callback(_record_usage, scope_state, exchange)
        events = state.pipeline.events(job)
        # closed first at the end (a stream the client left aborts its engine request now,
        # not when the garbage collector finalizes the generator)
        cleanup.push_async_callback(events.aclose)
        watch = DisconnectWatch(request.receive)
        try:
            if not exchange.stream:
                body = await watch.run(exchange.collect(job, events))
                watch.stop()
                if state.settings.log_prompts:
                    log.info("completion", extra={"response_id": job.id, "body": body})
                return JSONBody(body)
            frames = exchange.frames(job, events)
            # Pull the first frame before the 200, so early errors keep their status; a client
            # that leaves meanwhile still aborts the generation.
            first = await watch.run(anext(frames))
        except BaseException:
            watch.stop()  # before the clean-up's awaits (server.sse.DisconnectWatch)
            raise
        response = EventStreamResponse(first, frames, watch, cleanup.pop_all(),
                                       exchange.error_frame, exchange.done)
    return response


def _record_usage(scope_state: dict, exchange: Exchange) -> None:
    scope_state["completion_tokens"] = sum(u.completion_tokens for u in exchange.usages)
