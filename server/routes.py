"""Thin HTTP handlers: each hands its surface's exchange to server.respond; no Harmony here."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from server import metrics
from server.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    ServiceUnavailableError,
)
from server.respond import respond
from server.schemas import completions as completions_request
from server.schemas.chat_request import CompletionCreateParams
from server.schemas.chat_response import ChatCompletion, ChatCompletionChunk, Model, ModelList
from server.schemas.messages import MessageCountTokensParams, MessageCreateParams
from server.schemas.responses import ResponseCreateParams
from server.schemas.tokenize import TokenizeRequest, TokenizeResponse
from server.store import StoreUnavailableError, owner_of
from server.surfaces import chat
from server.surfaces.completions import CompletionsExchange
from server.surfaces.messages import MessagesExchange, count_plan
from server.surfaces.responses import ResponsesExchange

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


@router.post("/v1/completions")
async def completions(body: completions_request.CompletionCreateParams, request: Request):
    log_unknown_fields(body)
    state = request.app.state
    return await respond(request, CompletionsExchange(body, state.settings, state.harmony))


# -- Anthropic Messages ---------------------------------------------------------------------------

@router.post("/v1/messages")
async def create_message(body: MessageCreateParams, request: Request):
    log_unknown_fields(body)
    return await respond(request, MessagesExchange(body, request.app.state.settings))


@router.post("/v1/messages/count_tokens")
async def count_message_tokens(body: MessageCountTokensParams, request: Request) -> JSONResponse:
    state = request.app.state
    state.lifecycle.refuse_unless_serving()
    tokens, _ = state.pipeline.checked_prompt(count_plan(body, state.settings))
    return JSONResponse({"input_tokens": len(tokens)})


# -- Responses API ----------------------------------------------------------------------------

def _owner(request: Request) -> str:
    return owner_of(request.scope["state"].get("api_key"))


async def _stored(request: Request, response_id: str, param: str | None = None):
    """A stored response of this request's key; else the same 4xx as for an id never seen."""
    try:
        record = await request.app.state.store.get(_owner(request), response_id)
    except StoreUnavailableError as exc:
        raise ServiceUnavailableError(f"the response store is unavailable: {exc}",
                                      headers={"Retry-After": "1"}) from None
    if record is not None:
        return record
    if param == "previous_response_id":
        raise InvalidRequestError(f"previous response with id '{response_id}' not found",
                                  param=param, code="previous_response_not_found")
    raise NotFoundError(f"no response with id '{response_id}' found", param="response_id")


@router.post("/v1/responses")
async def create_response(body: ResponseCreateParams, request: Request):
    log_unknown_fields(body)
    state = request.app.state
    previous = None
    if body.previous_response_id is not None:
        previous = await _stored(request, body.previous_response_id, "previous_response_id")
    exchange = ResponsesExchange(body, state.settings, state.store, _owner(request), previous)
    return await respond(request, exchange)


@router.get("/v1/responses/{response_id}")
async def retrieve_response(response_id: str, request: Request) -> JSONResponse:
    return JSONResponse((await _stored(request, response_id)).response)


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request) -> JSONResponse:
    try:
        deleted = await request.app.state.store.delete(_owner(request), response_id)
    except StoreUnavailableError as exc:
        raise ServiceUnavailableError(f"the response store is unavailable: {exc}",
                                      headers={"Retry-After": "1"}) from None
    if not deleted:
        raise NotFoundError(f"no response with id '{response_id}' found", param="response_id")
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(response_id: str, request: Request,
                           limit: Annotated[int, Query(ge=1, le=100)] = 20,
                           order: Literal["asc", "desc"] = "desc",
                           after: str | None = None) -> JSONResponse:
    items = (await _stored(request, response_id)).input_items
    items = items[::-1] if order == "desc" else items
    ids = [item["id"] for item in items]
    start = ids.index(after) + 1 if after in ids else 0
    page = items[start: start + limit]
    return JSONResponse({"object": "list", "data": page,
                         "first_id": page[0]["id"] if page else None,
                         "last_id": page[-1]["id"] if page else None,
                         "has_more": start + limit < len(items)})
