"""The scripted engine hands its steps over as vLLM's output processor does at --stream-interval N:
the first step alone, then a delta once N tokens have gathered (whole steps), then the rest."""

from __future__ import annotations

import pytest

from server.engine.protocol import GenerationRequest, SamplingOptions
from server.engine.scripted import ScriptedEngine
from tests.corpus import COMPLETIONS

TEXT = COMPLETIONS["tool_in_channel"]


async def _deltas(harmony, chunk_size: int, interval: int, max_tokens: int):
    engine = ScriptedEngine(harmony, [TEXT], chunk_size=chunk_size, stream_interval=interval)
    await engine.start()
    request = GenerationRequest("r", [1, 2, 3], SamplingOptions(max_tokens, ()))
    return [delta async for delta in engine.generate(request)]


@pytest.mark.parametrize("chunk_size", [1, 3, 8])
@pytest.mark.parametrize("interval", [1, 2, 8])
@pytest.mark.parametrize("max_tokens", [1, 5, 17, 10_000])
async def test_deltas_follow_vllms_stream_interval(harmony, chunk_size, interval, max_tokens):
    script = harmony.encode_completion(TEXT)
    expected = script[:max_tokens]
    deltas = await _deltas(harmony, chunk_size, interval, max_tokens)
    sizes = [len(delta.token_ids) for delta in deltas]
    assert [t for delta in deltas for t in delta.token_ids] == expected
    assert [delta.finish_reason for delta in deltas] == [None] * (len(deltas) - 1) + [
        "length" if max_tokens < len(script) else "stop"]
    group = chunk_size * -(-interval // chunk_size)  # whole steps, at least `interval` tokens
    assert sizes[0] == min(chunk_size, len(expected))
    assert all(size == group for size in sizes[1:-1]), sizes
    assert 0 < sizes[-1] <= max(group, chunk_size)


async def test_token_delay_is_per_step_whatever_the_interval(harmony, monkeypatch):
    """--script-token-delay is seconds per engine step: a delta of k steps waits k delays."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("server.engine.scripted.asyncio.sleep", record)
    engine = ScriptedEngine(harmony, [TEXT], chunk_size=3, stream_interval=8, token_delay=0.5)
    await engine.start()
    request = GenerationRequest("r", [1, 2, 3], SamplingOptions(17, ()))
    deltas = [delta async for delta in engine.generate(request)]
    assert [len(delta.token_ids) for delta in deltas] == [3, 9, 5]  # steps: 1, 3, 2 (the last cut)
    assert waits == [0.5, 1.5, 1.0]
