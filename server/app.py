"""create_app(settings, engine): the FastAPI app around one engine.

The engine is an argument, so tests inject a scripted engine instead of patching modules. The
lifespan loads the engine in the background (``/ready`` and ``/health`` answer 503 meanwhile)
and watches it: an engine that fails to load or dies makes ``on_fatal`` stop the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.config import Settings
from server.engine.protocol import Engine
from server.errors import (
    APIError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    ServerError,
    error_body,
)
from server.harmony.encoding import Harmony, load_harmony
from server.lifecycle import Lifecycle
from server.middleware import EdgeMiddleware
from server.pipeline import Pipeline
from server.routes import router
from server.sse import ClientDisconnected
from server.store import ResponseStore, build_store

log = logging.getLogger(__name__)

ENGINE_POLL_SECONDS = 0.5


def _error_response(error: APIError, request: Request) -> JSONResponse:
    """The error in the envelope of the surface that owns the route (OpenAI's or Anthropic's)."""
    return JSONResponse(error_body(error, request.url.path), status_code=error.status,
                        headers=error.headers)


# Tags pydantic inserts into error paths for our discriminated unions ("messages.0.user").
_UNION_TAGS = {"system", "developer", "user", "assistant", "tool",
               "text", "image_url", "input_audio", "file", "refusal"}


def _param(loc: tuple) -> str | None:
    """The request field an error names, as OpenAI writes it: ``messages.0.content``."""
    parts: list[str] = []
    for item in loc[1:] if loc and loc[0] == "body" else loc:
        after_index = bool(parts) and parts[-1].isdigit()
        if isinstance(item, str) and (("[" in item or item in ("str", "int", "float", "bool"))
                                      or (after_index and item in _UNION_TAGS)):
            continue
        parts.append(str(item))
    return ".".join(parts) or None


def _validation_error(exc: RequestValidationError) -> InvalidRequestError:
    first = exc.errors()[0] if exc.errors() else {}
    param = _param(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        return InvalidRequestError("the request body is not valid JSON", code="invalid_json")
    if param is None:  # the body itself: empty, null, an array, a string...
        return InvalidRequestError("the request body must be a JSON object")
    return InvalidRequestError(f"{param}: {first.get('msg', 'invalid value')}", param=param)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return _error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(_validation_error(exc), request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error: APIError = NotFoundError(f"no route {request.method} {request.url.path}")
        elif exc.status_code == 405:
            error = MethodNotAllowedError(f"method {request.method} is not allowed here")
        else:
            error = InvalidRequestError(str(exc.detail))
            error.status = exc.status_code
        return _error_response(error, request)

    @app.exception_handler(ClientDisconnected)
    async def client_gone(request: Request, exc: ClientDisconnected) -> JSONResponse:
        # Nobody reads this; 499 (nginx's "client closed request") keeps it out of 5xx counts.
        return JSONResponse({}, status_code=499)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error_response(ServerError("internal server error"), request)


async def _run_engine(engine: Engine, lifecycle: Lifecycle) -> None:
    """Load the engine, then watch it until it dies (or the app stops)."""
    lifecycle.mark_loading()
    try:
        await engine.start()
    except Exception as exc:
        log.exception("the engine failed to start")
        lifecycle.fatal(f"engine failed to start: {exc}")
        return
    # What start-up allocated (vLLM, torch, the vocabulary: millions of objects) lives as long
    # as the process; keep it out of the collector's full passes, which otherwise scan it all
    # and pause every stream (as vLLM's own server does, with gc.freeze).
    gc.collect()
    gc.freeze()
    lifecycle.mark_ready(engine.max_model_len)
    while not engine.is_dead:
        await asyncio.sleep(ENGINE_POLL_SECONDS)
    lifecycle.fatal("the engine died")


async def _reap_forever(pipeline: Pipeline, settings: Settings) -> None:
    """Enforce request deadlines a few times per second (more often for tiny timeouts)."""
    shortest = min(settings.stream_idle_timeout, settings.request_timeout)
    period = min(0.25, max(0.005, shortest / 4))
    while True:
        await asyncio.sleep(period)
        pipeline.reap()


def create_app(settings: Settings, engine: Engine, *, harmony: Harmony | None = None,
               store: ResponseStore | None = None,
               on_fatal: Callable[[str], None] = lambda reason: None) -> FastAPI:
    harmony = harmony or load_harmony()
    store = store or build_store(settings)
    pipeline = Pipeline(settings, harmony, engine)
    lifecycle = Lifecycle(settings, on_fatal, pipeline.last_progress, lambda: engine.is_dead)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        tasks = [asyncio.create_task(_run_engine(engine, lifecycle)),
                 asyncio.create_task(_reap_forever(pipeline, settings))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await engine.shutdown()
            await store.close()

    app = FastAPI(title="gpt-oss-server", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.harmony = harmony
    app.state.lifecycle = lifecycle
    app.state.pipeline = pipeline
    app.state.store = store
    app.state.started = int(time.time())
    app.include_router(router)
    _install_error_handlers(app)
    app.add_middleware(EdgeMiddleware, settings=settings)
    return app
