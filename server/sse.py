"""Server-sent events: neutral framing, disconnect detection, and the error frame after the 200.

The route helper (server.respond) pulls the first frame before building this response, so
failures before any output (bad prompt, overload, dead engine) still get real HTTP statuses.
After the 200, an error becomes the surface's error frame (Chat: ``data: {"error": ...}`` then
``data: [DONE]``; Anthropic: ``event: error``), and the surface's terminator ends the stream.
A client that goes away cancels the body iterator, which aborts the engine request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.responses import Response

from server import metrics
from server.errors import APIError, ServerError

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


class ClientDisconnected(Exception):
    pass


def data_frame(payload: dict) -> bytes:
    """A frame with only a ``data:`` line (Chat and raw Completions)."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def choice_framer(head: dict) -> Callable[[dict], bytes]:
    """Frames of ``head`` with one choice each (Chat's and raw Completions' chunks): the head
    is serialized once per stream, not once per frame."""
    opening = b"data: " + orjson.dumps(head)[:-1] + b',"choices":['

    def frame(choice: dict) -> bytes:
        return opening + orjson.dumps(choice) + b"]}\n\n"

    return frame


def event_frame(name: bytes, payload: dict) -> bytes:
    """A frame with an ``event:`` line (Responses, Anthropic Messages)."""
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_data_frame(error: APIError) -> bytes:
    """OpenAI's error after the 200: the envelope as a data frame."""
    return data_frame(error.body())


async def watch_disconnect(receive: Callable[[], Awaitable[dict]]) -> None:
    """Return when the client disconnects (the request body was already read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def run_until_disconnect(work: Awaitable, receive: Callable[[], Awaitable[dict]]):
    """Await ``work``; if the client disconnects first, cancel it and raise ClientDisconnected."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(watch_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            metrics.ABORTS.labels("client_disconnect").inc()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise ClientDisconnected
    return task.result()


class EventStreamResponse(Response):
    """An ASGI response streaming ``first`` then ``rest``, closing ``cleanup`` at the end."""

    def __init__(self, first: bytes, rest: AsyncIterator[bytes],
                 cleanup: contextlib.AsyncExitStack, error_frame: Callable[[APIError], bytes],
                 done: bytes = b"") -> None:
        self.first = first
        self.rest = rest
        self.cleanup = cleanup
        self.error_frame = error_frame
        self.done = done  # the surface's terminator (Chat's ``data: [DONE]``), may be empty
        self.background = None  # FastAPI reads it off any Response

    async def __call__(self, scope, receive, send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                   (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            send_body = scope.get("state", {}).get("send_body", send)  # see EdgeMiddleware
            await run_until_disconnect(self._send_body(send_body), receive)
        except (ClientDisconnected, OSError):
            pass  # the client went away: closing the iterators below aborts the generation
        finally:
            await self.rest.aclose()
            await self.cleanup.aclose()

    async def _send_body(self, send) -> None:
        await send({"type": "http.response.body", "body": self.first, "more_body": True})
        try:
            async for chunk in self.rest:  # the hot path: one send per batch, nothing between
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except APIError as exc:
            await send({"type": "http.response.body", "body": self.error_frame(exc),
                        "more_body": True})
        except Exception:
            log.exception("stream failed after the response started")
            error = self.error_frame(ServerError("the server failed while streaming"))
            await send({"type": "http.response.body", "body": error, "more_body": True})
        await send({"type": "http.response.body", "body": self.done, "more_body": False})
