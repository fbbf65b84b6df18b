"""Thin HTTP handlers: each hands its surface's exchange to server.respond; no Harmony here."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from server import metrics
from server.errors import ModelNotFoundError
from server.respond import respond
from server.schemas.chat_request import CompletionCreateParams
from server.schemas.chat_response import ChatCompletion, ChatCompletionChunk, Model, ModelList
from server.schemas.tokenize import TokenizeRequest, TokenizeResponse
from server.surfaces import chat

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
    plan = chat.to_plan(body.as_chat_request(state.settings.served_model_name[0]), state.settings)
    tokens, _ = state.pipeline.checked_prompt(plan)
    return TokenizeResponse(count=len(tokens), max_model_len=state.engine.max_model_len,
                            tokens=tokens, prompt=state.harmony.decode_text(tokens))


def log_unknown_fields(body) -> None:
    if body.model_extra:
        log.info("ignored unknown request fields: %s", sorted(body.model_extra))


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=_STREAM_DOC)
async def chat_completions(body: CompletionCreateParams, request: Request):
    log_unknown_fields(body)
    return await respond(request, chat.ChatExchange(body, request.app.state.settings))
