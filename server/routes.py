"""Thin HTTP handlers: no Harmony here, only the pipeline, assemblers and lifecycle."""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from server import metrics
from server.assemble import collect, reasoning_fields, to_chunks
from server.errors import ModelNotFoundError
from server.schemas.chat_request import CompletionCreateParams
from server.schemas.chat_response import ChatCompletion, ChatCompletionChunk, Model, ModelList
from server.schemas.tokenize import TokenizeRequest, TokenizeResponse
from server.sse import EventStreamResponse, run_until_disconnect

log = logging.getLogger(__name__)
router = APIRouter()

_STREAM_DOC = {200: {"content": {"text/event-stream": {"schema": ChatCompletionChunk.model_json_schema()}},
                     "description": "A ChatCompletion, or with stream=true an SSE stream of chunks."}}


def _probe(ok_status: tuple[bool, str]) -> JSONResponse:
    ok, status = ok_status
    return JSONResponse({"status": status}, status_code=200 if ok else 503)


@router.api_route("/health", methods=["GET", "HEAD"], include_in_schema=False)
async def health(request: Request) -> JSONResponse:
    return _probe(request.app.state.lifecycle.live())


@router.api_route("/ready", methods=["GET", "HEAD"], include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    return _probe(request.app.state.lifecycle.ready())


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    stats = request.app.state.engine.stats()
    metrics.ENGINE_RUNNING.set(stats.running)
    metrics.ENGINE_WAITING.set(stats.waiting)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _models(request: Request) -> list[Model]:
    state = request.app.state
    return [Model(id=name, created=state.started, owned_by="gpt-oss-server",
                  max_model_len=state.engine.max_model_len or None)  # None: still loading
            for name in state.settings.served_model_name]


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    return ModelList(data=_models(request))


@router.get("/v1/models/{model:path}", response_model=Model)
async def retrieve_model(model: str, request: Request) -> Model:
    for entry in _models(request):
        if entry.id == model:
            return entry
    raise ModelNotFoundError(f"the model '{model}' does not exist", param="model")


@router.post("/tokenize", response_model=TokenizeResponse)
async def tokenize(body: TokenizeRequest, request: Request) -> TokenizeResponse:
    state = request.app.state
    state.lifecycle.refuse_unless_serving()  # the context length is known once loaded
    chat = body.as_chat_request(default_model=state.settings.served_model_name[0])
    tokens, _ = state.pipeline.checked_prompt(chat)
    return TokenizeResponse(count=len(tokens), max_model_len=state.engine.max_model_len,
                            tokens=tokens, prompt=state.harmony.decode_text(tokens))


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=_STREAM_DOC)
async def chat_completions(body: CompletionCreateParams, request: Request):
    state = request.app.state
    if body.model_extra:
        log.info("ignored unknown request fields: %s", sorted(body.model_extra))
    # before rendering: while loading, the context length is unknown (not 0)
    state.lifecycle.refuse_unless_serving()
    completion = state.pipeline.prepare(body, request.scope["state"].get("api_key"))
    if state.settings.log_prompts:  # off by default: prompts and outputs are user data
        log.info("prompt", extra={"completion_id": completion.id,
                                  "prompt": state.harmony.decode_text(completion.prompt)})
    request.scope["state"]["prompt_tokens"] = len(completion.prompt)
    fields = reasoning_fields(state.settings.reasoning_field, completion.include_reasoning)
    cleanup = contextlib.AsyncExitStack()
    async with cleanup:
        await cleanup.enter_async_context(state.lifecycle.admit())
        events = state.pipeline.events(completion)
        if not body.stream:
            result = await run_until_disconnect(collect(completion, events, fields), request.receive)
            request.scope["state"]["completion_tokens"] = result["usage"]["completion_tokens"]
            if state.settings.log_prompts:
                log.info("completion", extra={"completion_id": completion.id,
                                              "choices": result["choices"]})
            return JSONResponse(result)
        chunks = to_chunks(completion, events, fields)
        # Pull the first chunk before the 200, so early errors keep their status; a client that
        # leaves meanwhile still aborts the generation.
        first = await run_until_disconnect(anext(chunks), request.receive)
        response = EventStreamResponse(first, chunks, cleanup.pop_all())
    return response
