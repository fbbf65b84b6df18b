"""One engine request in flight and its deadlines (total and idle), enforced without timers."""

from __future__ import annotations

import asyncio
from asyncio import current_task
from collections.abc import AsyncIterator
from dataclasses import dataclass
from time import monotonic

from server import metrics
from server.engine.protocol import EngineDeadError, TokenDelta
from server.errors import RequestTimeoutError, ServiceUnavailableError

_EXPIRED = {"request_timeout": "the request took longer than the server allows",
            "stream_idle_timeout": "the engine produced no token within the idle timeout"}


@dataclass(slots=True)
class Generation:
    """One engine request in flight, and its deadlines.

    Deadlines are enforced by ``Pipeline.reap`` from one periodic task rather than by an
    ``asyncio.timeout`` around every engine step: that would cost a timer per token.
    """

    started: float
    deadline: float
    idle_limit: float
    last_step: float = 0.0
    first_step: float | None = None
    steps: int = 0
    waiting_since: float | None = None
    expired: str | None = None
    task: asyncio.Task | None = None  # the task awaiting the engine (it may change per step)

    def __post_init__(self) -> None:
        self.last_step = self.started

    def check(self, now: float) -> None:
        if self.expired is not None:
            return
        if now >= self.deadline:
            self.expired = "request_timeout"
        elif self.waiting_since is not None and now - self.waiting_since >= self.idle_limit:
            self.expired = "stream_idle_timeout"
        else:
            return
        metrics.ABORTS.labels(self.expired).inc()
        if self.waiting_since is not None:  # else the next step sees `expired`
            self.task.cancel()

    async def next_step(self, stream: AsyncIterator[TokenDelta]) -> TokenDelta:
        if self.expired is not None:
            raise RequestTimeoutError(_EXPIRED[self.expired])
        self.waiting_since = monotonic()
        self.task = current_task()
        try:
            delta = await stream.__anext__()
        except StopAsyncIteration:
            delta = None
        except asyncio.CancelledError:
            if self.expired is None or self.task.uncancel() > 0:
                raise
            raise RequestTimeoutError(_EXPIRED[self.expired]) from None
        except EngineDeadError as exc:
            raise ServiceUnavailableError(f"the engine is not available: {exc}") from exc
        now = self.last_step = monotonic()
        self.waiting_since = None
        if self.first_step is None:
            self.first_step = now
            metrics.TIME_TO_FIRST_TOKEN.observe(now - self.started)
        self.steps += 1
        if delta is None:  # the engine ended without saying why
            return TokenDelta([], "stop")
        if delta.finish_reason == "abort":
            raise ServiceUnavailableError("the request was aborted by the server")
        return delta

    def observe_timing(self) -> None:
        """Mean inter-token latency, once per generation (not a histogram sample per token)."""
        if self.first_step is not None and self.steps > 1:
            gaps = (self.last_step - self.first_step) / (self.steps - 1)
            metrics.INTER_TOKEN_LATENCY.observe(gaps)
