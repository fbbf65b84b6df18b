"""A Pipeline over a scripted engine, driven directly (no app, no HTTP), and Chat run on it."""

from __future__ import annotations

from server.config import Settings
from server.engine.scripted import ScriptedEngine
from server.pipeline import Pipeline
from server.schemas.chat_request import CompletionCreateParams
from server.surfaces.chat import ChatExchange


def scripted_pipeline(harmony, text: str | list[str], chunk_size: int,
                      interval: int = 1, engine_interval: int = 1) -> Pipeline:
    """``interval``: the server's --stream-interval, which the pipeline applies; the engine
    batches its deltas by ``engine_interval`` (the server passes its interval to the engine too;
    1 here by default, so that the pipeline's own batching is what a test exercises)."""
    settings = Settings(engine="scripted", script="x", served_model_name=["m"],
                        stream_interval=interval, harmony_date="2026-01-01")
    texts = [text] if isinstance(text, str) else text
    engine = ScriptedEngine(harmony, texts, chunk_size=chunk_size, stream_interval=engine_interval)
    engine.started = True  # loaded, as the app's start-up would leave it
    return Pipeline(settings, harmony, engine)


def chat_exchange(pipeline: Pipeline, request: CompletionCreateParams | dict):
    """(exchange, job) of a chat request on ``pipeline``."""
    if isinstance(request, dict):
        request = CompletionCreateParams.model_validate(request)
    exchange = ChatExchange(request, pipeline.settings)
    return exchange, pipeline.prepare(exchange.plan(), exchange.id)


async def chat_collect(pipeline: Pipeline, request) -> dict:
    exchange, job = chat_exchange(pipeline, request)
    return await exchange.collect(job, pipeline.events(job))


async def chat_frames(pipeline: Pipeline, request) -> list[bytes]:
    exchange, job = chat_exchange(pipeline, request)
    return [frame async for frame in exchange.frames(job, pipeline.events(job))]
