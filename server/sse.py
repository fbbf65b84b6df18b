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


class DisconnectWatch:
    """One task per request that waits for the client to leave and then cancels the task that
    is serving the request at that moment, if any (``run``). Both phases of a stream share it:
    the first frame, pulled inside the route before the 200, and the body, sent by the response
    afterwards; the work runs in the request's own task (no task per phase, no ``asyncio.wait``).

    Python 3.11 cannot withdraw a cancellation once requested, so the watcher cancels only inside
    ``run``: the cancellation lands at the await ``run`` was suspended on, and ``stop``, a plain
    call made before any clean-up awaits, keeps it from firing later.
    """

    def __init__(self, receive: Callable[[], Awaitable[dict]]) -> None:
        self.gone = False  # the client has left
        self._serving: asyncio.Task | None = None
        self._cancelled = False  # the watcher cancelled ``_serving``
        self._task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Callable[[], Awaitable[dict]]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass  # the request body was already read: nothing else arrives
        self.gone = True
        if self._serving is not None:
            metrics.ABORTS.labels("client_disconnect").inc()
            self._cancelled = True
            self._serving.cancel()

    async def run(self, work: Awaitable):
        """Await ``work`` in this task; if the client leaves first (or has already left), stop
        it and raise ClientDisconnected."""
        if self.gone:
            close = getattr(work, "close", None)
            if close is not None:
                close()  # never started
            raise ClientDisconnected
        task = self._serving = asyncio.current_task()
        try:
            return await work
        except asyncio.CancelledError:
            if not self._cancelled or task.uncancel() > 0:  # someone else's cancellation too
                raise
            raise ClientDisconnected from None
        finally:
            self._serving = None

    def stop(self) -> None:
        self._task.cancel()


class EventStreamResponse(Response):
    """An ASGI response streaming ``first`` then ``rest``, closing ``cleanup`` at the end."""

    def __init__(self, first: bytes, rest: AsyncIterator[bytes], watch: DisconnectWatch,
                 cleanup: contextlib.AsyncExitStack, error_frame: Callable[[APIError], bytes],
                 done: bytes = b"") -> None:
        self.first = first
        self.watch = watch
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
            await self.watch.run(self._send_body(send_body))
        except (ClientDisconnected, OSError):
            pass  # the client went away: closing the iterators below aborts the generation
        finally:
            self.watch.stop()  # first: nothing may cancel the clean-up
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
