"""The server's life: loading -> ready -> draining, or dead; admission and the watchdog.

``/ready`` and ``/health`` read it; the chat route enters through ``admit``. A fatal condition
(engine failed to load or died) calls ``on_fatal``, which makes the process exit non-zero so
that Kubernetes restarts the pod.

Each change of state is one line of the logger ``server.lifecycle`` whose ``state`` field
is ``loading``, ``ready``, ``draining`` or ``dead`` (``__main__`` adds ``stopped``), so
``kubectl logs`` tells the story: what loads, when it serves and with what context, why it
stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from server import metrics
from server.config import Settings
from server.errors import ServiceUnavailableError

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(self, settings: Settings, on_fatal: Callable[[str], None],
                 last_progress: Callable[[], float | None],
                 engine_dead: Callable[[], bool]) -> None:
        self.settings = settings
        self.on_fatal = on_fatal
        self.engine_dead = engine_dead
        self.last_progress = last_progress  # when a token last arrived (None: nothing runs)
        self.loaded = False
        self.loading_since: float | None = None
        self.draining = False
        self.dead_reason: str | None = None
        self.in_flight = 0
        self.queued = 0
        self._slots = asyncio.Semaphore(settings.max_concurrent_requests)
        self._idle = asyncio.Event()
        self._idle.set()

    # -- states ---------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.settings.served_model_name[0] if self.settings.served_model_name else "?"

    def mark_loading(self) -> None:
        self.loading_since = time.monotonic()
        log.info("loading: %s on the %s engine; /ready answers 503 until it has loaded",
                 self.model, self.settings.engine,
                 extra={"state": "loading", "model": self.model, "engine": self.settings.engine})

    def mark_ready(self, max_model_len: int) -> None:
        took = time.monotonic() - (self.loading_since or time.monotonic())
        self.loaded = True
        log.info("ready: serving %s (max_model_len %d), loaded in %.1f s", self.model,
                 max_model_len, took, extra={"state": "ready", "model": self.model,
                                             "max_model_len": max_model_len,
                                             "load_seconds": round(took, 2)})

    def fatal(self, reason: str) -> None:
        if self.dead_reason is None:
            self.dead_reason = reason
            log.error("fatal: %s; the server exits (status 1) so that it is restarted", reason,
                      extra={"state": "dead", "reason": reason})
            self.on_fatal(reason)

    # -- health ---------------------------------------------------------------------------
    def stalled_for(self) -> float:
        """Seconds with requests in flight and no token produced (0 when idle)."""
        last = self.last_progress()
        return 0.0 if last is None else time.monotonic() - last

    def live(self) -> tuple[bool, str]:
        if self.engine_dead():
            self.fatal("the engine died")  # usually the engine watcher got there first
        if self.dead_reason:
            return False, f"dead: {self.dead_reason}"
        if not self.loaded:
            return False, "loading"
        if self.stalled_for() > self.settings.watchdog_health_after:
            return False, "stalled"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        alive, status = self.live()
        if not alive:
            return False, status
        if self.draining:
            return False, "draining"
        if self.stalled_for() > self.settings.watchdog_ready_after:
            return False, "stalled"
        return True, "ok"

    # -- admission ------------------------------------------------------------------------
    def _refuse(self, why: str, message: str) -> ServiceUnavailableError:
        metrics.REJECTED.labels(why).inc()
        return ServiceUnavailableError(message, code=f"server_{why}", headers={"Retry-After": "1"})

    def refuse_unless_serving(self) -> None:
        """503 before any work (rendering included) while draining, loading or dead."""
        if self.draining:
            raise self._refuse("draining", "the server is shutting down; retry on another replica")
        if self.dead_reason:
            raise self._refuse("unavailable", "the engine is not available; retry later")
        if not self.loaded:
            raise self._refuse("unavailable", "the model is still loading; retry later")

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a generation slot, waiting in the bounded queue if needed; 503 beyond it."""
        self.refuse_unless_serving()
        if self._slots.locked() and self.queued >= self.settings.max_queued_requests:
            raise self._refuse("overloaded", "the server is at capacity; retry later")
        self.queued += 1
        metrics.QUEUED.inc()
        try:
            await self._slots.acquire()
        finally:
            self.queued -= 1
            metrics.QUEUED.dec()
        self.in_flight += 1
        self._idle.clear()
        metrics.IN_FLIGHT.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()
            self._slots.release()
            if self.in_flight == 0:
                self._idle.set()

    async def drain(self) -> bool:
        """Refuse new work and wait for in-flight requests; True if all finished in time."""
        self.draining = True
        log.info("draining: %d request(s) in flight, given up to %g s to finish; new requests "
                 "get 503", self.in_flight, self.settings.drain_timeout,
                 extra={"state": "draining", "in_flight": self.in_flight,
                        "drain_timeout": self.settings.drain_timeout})
        try:
            async with asyncio.timeout(self.settings.drain_timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False
