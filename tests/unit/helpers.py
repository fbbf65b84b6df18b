"""A Pipeline over a scripted engine, driven directly (no app, no HTTP)."""

from __future__ import annotations

from server.config import Settings
from server.engine.scripted import ScriptedEngine
from server.pipeline import Pipeline


def scripted_pipeline(harmony, text: str, chunk_size: int, interval: int = 1) -> Pipeline:
    settings = Settings(engine="scripted", script="x", served_model_name=["m"],
                        stream_interval=interval, harmony_date="2026-01-01")
    engine = ScriptedEngine(harmony, [text], chunk_size=chunk_size)
    engine.started = True  # loaded, as the app's start-up would leave it
    return Pipeline(settings, harmony, engine)
