"""The wire shapes have one source: every body and stream event a surface's folds emit validates
against the official SDKs' own pydantic types (openai-python, anthropic-sdk-python), strictly
(``model_validate``, not the SDKs' lenient construction), for every scripted completion."""

from __future__ import annotations

import json

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from server.schemas.completions import CompletionCreateParams as RawParams
from server.schemas.messages import MessageCreateParams
from server.schemas.responses import ResponseCreateParams
from server.store import MemoryStore
from server.surfaces.completions import CompletionsExchange
from server.surfaces.messages import MessagesExchange
from server.surfaces.responses import ResponsesExchange
from tests.corpus import COMPLETIONS, WEATHER_TOOL
from tests.unit.helpers import chat_collect, chat_frames, scripted_pipeline

STREAM_EVENTS = TypeAdapter(ResponseStreamEvent)
ANTHROPIC_EVENTS = TypeAdapter(RawMessageStreamEvent)
NAMES = sorted(COMPLETIONS)


def _data(frames: list[bytes]) -> list[dict]:
    """The JSON of each SSE frame, checking that an ``event:`` line names its ``type``."""
    out = []
    for frame in b"".join(frames).split(b"\n\n"):
        if not frame or frame == b"data: [DONE]":
            continue
        lines = frame.split(b"\n")
        payload = json.loads(lines[-1].removeprefix(b"data: "))
        if len(lines) == 2:
            assert lines[0].removeprefix(b"event: ").decode() == payload["type"]
        out.append(payload)
    return out


async def _run(pipeline, exchange, stream: bool):
    job = pipeline.prepare(exchange.plan(), exchange.id)
    if stream:
        return [f async for f in exchange.frames(job, pipeline.events(job))]
    return await exchange.collect(job, pipeline.events(job))


@pytest.mark.parametrize("name", NAMES)
async def test_chat(harmony, name):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [WEATHER_TOOL], "stream": True, "stream_options": {"include_usage": True}}
    pipeline = scripted_pipeline(harmony, COMPLETIONS[name], 3)
    ChatCompletion.model_validate(await chat_collect(pipeline, {**body, "stream": False,
                                                                "stream_options": None}))
    for chunk in _data(await chat_frames(pipeline, body)):
        ChatCompletionChunk.model_validate(chunk)


@pytest.mark.parametrize("name", NAMES)
async def test_responses(harmony, name):
    request = ResponseCreateParams.model_validate({
        "model": "m", "input": "hi", "stream": True,
        "tools": [{"type": "function", **WEATHER_TOOL["function"]}]})
    pipeline = scripted_pipeline(harmony, COMPLETIONS[name], 3)

    def exchange():
        return ResponsesExchange(request, pipeline.settings, MemoryStore(10, 2**20, 60), "", None)

    Response.model_validate(await _run(pipeline, exchange(), stream=False))
    events = _data(await _run(pipeline, exchange(), stream=True))
    for event in events:
        STREAM_EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("thinking", [True, False])
async def test_messages(harmony, name, thinking):
    request = MessageCreateParams.model_validate({
        "model": "m", "max_tokens": 500, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        **({"thinking": {"type": "enabled", "budget_tokens": 2048}} if thinking else {})})
    pipeline = scripted_pipeline(harmony, COMPLETIONS[name], 3)
    Message.model_validate(await _run(pipeline, MessagesExchange(request, pipeline.settings),
                                      stream=False))
    for event in _data(await _run(pipeline, MessagesExchange(request, pipeline.settings),
                                  stream=True)):
        if event["type"] != "ping":
            ANTHROPIC_EVENTS.validate_python(event)


@pytest.mark.parametrize("name", NAMES)
async def test_completions(harmony, name):
    request = RawParams.model_validate({"model": "m", "prompt": ["hi", "there"], "n": 2,
                                        "max_tokens": 50, "echo": True})
    pipeline = scripted_pipeline(harmony, COMPLETIONS[name], 3)
    exchange = CompletionsExchange(request, pipeline.settings, harmony)
    Completion.model_validate(await _run(pipeline, exchange, stream=False))
