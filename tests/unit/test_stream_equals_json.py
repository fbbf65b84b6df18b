"""The invariant: concatenated stream deltas == the non-stream message, for every chunking."""

from __future__ import annotations

import json

import pytest

from tests.corpus import COMPLETIONS, WEATHER_TOOL
from tests.unit.helpers import chat_collect, chat_frames, scripted_pipeline


def _request(**extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL],
            "stream_options": {"include_usage": True}, "stream": True, **extra}


def _fold_stream(frames: list[bytes]) -> tuple[dict, dict]:
    message = {"reasoning_content": "", "reasoning": "", "content": "", "tool_calls": []}
    finish, usage = None, None
    for frame in b"".join(frames).split(b"\n\n"):
        if not frame:
            continue
        chunk = json.loads(frame.removeprefix(b"data: "))
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta = choice["delta"]
            for key in ("reasoning_content", "reasoning", "content"):
                message[key] += delta.get(key) or ""
            for call in delta.get("tool_calls") or []:
                if "id" in call:
                    message["tool_calls"].append({"id": call["id"], "type": "function",
                                                  "function": dict(call["function"])})
                else:
                    message["tool_calls"][call["index"]]["function"]["arguments"] += \
                        call["function"]["arguments"]
            finish = choice["finish_reason"] or finish
    return {**message, "finish_reason": finish}, usage


def _normalise(choice: dict) -> dict:
    m = choice["message"]
    return {"reasoning_content": m["reasoning_content"] or "", "reasoning": m["reasoning"] or "",
            "content": m["content"] or "", "tool_calls": m["tool_calls"] or [],
            "finish_reason": choice["finish_reason"]}


async def _both(harmony, text, chunk_size, interval=1, engine_interval=1, **extra):
    request = _request(**extra)
    pipeline = scripted_pipeline(harmony, text, chunk_size, interval, engine_interval)
    collected = await chat_collect(pipeline, request)
    frames = await chat_frames(pipeline, request)
    return collected, frames


def _without_ids(message: dict) -> dict:
    for call in message["tool_calls"]:
        call["id"] = "call_x"
    return message


@pytest.mark.parametrize("name", sorted(COMPLETIONS))
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 10_000], ids=lambda k: f"chunk{k}")
async def test_stream_deltas_equal_json_message(harmony, name, chunk_size):
    collected, frames = await _both(harmony, COMPLETIONS[name], chunk_size)
    streamed, usage = _fold_stream(frames)
    assert _without_ids(streamed) == _without_ids(_normalise(collected["choices"][0]))
    assert usage == collected["usage"]


@pytest.mark.parametrize("interval", [2, 8])
async def test_stream_interval_batches_without_changing_the_message(harmony, interval):
    collected, frames = await _both(harmony, COMPLETIONS["plain"], 1, interval)
    plain_frames = (await _both(harmony, COMPLETIONS["plain"], 1, 1))[1]
    streamed, usage = _fold_stream(frames)
    assert _without_ids(streamed) == _without_ids(_normalise(collected["choices"][0]))
    assert len(frames) < len(plain_frames)


@pytest.mark.parametrize("name", sorted(COMPLETIONS))
@pytest.mark.parametrize("chunk_size", [1, 3], ids=lambda k: f"chunk{k}")
@pytest.mark.parametrize("interval", [2, 8])
async def test_engine_side_batching_keeps_the_message(harmony, name, chunk_size, interval):
    """The interval applied where vLLM applies it (its output processor, which the server tells
    its --stream-interval) as well as by the pipeline: the same message, no more frames."""
    collected, frames = await _both(harmony, COMPLETIONS[name], chunk_size, interval, interval)
    pipeline_only = (await _both(harmony, COMPLETIONS[name], chunk_size, interval))[1]
    streamed, usage = _fold_stream(frames)
    assert _without_ids(streamed) == _without_ids(_normalise(collected["choices"][0]))
    assert usage == collected["usage"]
    assert len(frames) <= len(pipeline_only) + 1  # the first step goes alone, as in vLLM


@pytest.mark.parametrize("max_tokens", [1, 4, 9, 20, -1], ids=lambda k: f"max{k}")
async def test_truncated_stream_equals_json(harmony, max_tokens):
    if max_tokens < 0:  # one short of the whole completion
        max_tokens = len(harmony.encode_completion(COMPLETIONS["tool_in_channel"])) - 1
    collected, frames = await _both(harmony, COMPLETIONS["tool_in_channel"], 3,
                                    max_tokens=max_tokens)
    streamed, usage = _fold_stream(frames)
    assert _without_ids(streamed) == _without_ids(_normalise(collected["choices"][0]))
    assert streamed["finish_reason"] == "length" and usage["completion_tokens"] == max_tokens
