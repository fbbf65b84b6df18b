"""Shared checks for the engine tests (structure and usage arithmetic, never text: the weights
are random, so the answers are noise)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import openai

MESSAGES = [{"role": "user", "content": "Say hello."}]
# Random weights emit noise the Harmony decoder drops, so a plain stream shows nothing until it
# ends. This bias makes the model say '<|message|>' (opens a content message) and 'hello' only:
# visible content streams from the first tokens on, and no stop token can end it early.
CHATTY_BIAS = {"200008": 100, "24912": 100}
# A stream that only ends when the test ends it (on a server started with long_context=True).
LONG_STREAM_TOKENS = 30000


def check_completion(server, *, n: int = 1, max_tokens: int = 24) -> None:
    client = server.client()
    result = client.chat.completions.create(model=server.model, messages=MESSAGES, n=n,
                                            max_tokens=max_tokens, temperature=1.0, seed=7)
    assert result.object == "chat.completion"
    assert result.model == server.model
    assert [c.index for c in result.choices] == list(range(n))
    for choice in result.choices:
        assert choice.finish_reason in ("stop", "length", "tool_calls")
        assert choice.message.role == "assistant"
    usage = result.usage
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= n * max_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def check_length(server, max_tokens: int = 5) -> None:
    """Random weights rarely produce a stop token: a short max_tokens ends with 'length'."""
    client = server.client()
    result = client.chat.completions.create(
        model=server.model, messages=MESSAGES, max_tokens=max_tokens,
        # only the 'length' path: bias the Harmony stop tokens away
        logit_bias={"200002": -100, "200012": -100, "199999": -100, "200007": -100})
    assert result.choices[0].finish_reason == "length"
    assert result.usage.completion_tokens == max_tokens


def stream_once(server, *, max_tokens: int = 16, n: int = 1) -> tuple[list, object]:
    client = server.client()
    chunks = list(client.chat.completions.create(
        model=server.model, messages=MESSAGES, max_tokens=max_tokens, n=n, stream=True,
        stream_options={"include_usage": True}))
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == []
    finishes = {}
    for chunk in chunks[:-1]:
        assert chunk.object == "chat.completion.chunk"
        assert chunk.id == chunks[0].id
        for choice in chunk.choices:
            if choice.finish_reason is not None:
                assert choice.index not in finishes
                finishes[choice.index] = choice.finish_reason
    assert sorted(finishes) == list(range(n))
    usage = chunks[-1].usage
    assert 0 < usage.completion_tokens <= n * max_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    return chunks, usage


async def _one_stream(client: openai.AsyncOpenAI, model: str, max_tokens: int) -> dict:
    stream = await client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=max_tokens, stream=True,
        stream_options={"include_usage": True}, logit_bias=CHATTY_BIAS)
    finish, usage, chunks, text = None, None, 0, ""
    async for chunk in stream:
        chunks += 1
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            text += choice.delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    return {"finish": finish, "usage": usage, "chunks": chunks, "text": text}


def check_concurrent_streams(server, count: int = 16, max_tokens: int = 32) -> None:
    """All streams complete; under CHATTY_BIAS no stop token can be sampled, so each one
    generates exactly max_tokens: completion_tokens equals what was streamed (every token is
    'hello' content or a '<|message|>')."""
    async def run() -> list[dict]:
        async with server.async_client() as client:
            return await asyncio.gather(*(_one_stream(client, server.model, max_tokens)
                                          for _ in range(count)))
    results = asyncio.run(run())
    assert len(results) == count
    prompt_tokens = {r["usage"].prompt_tokens for r in results}
    assert len(prompt_tokens) == 1
    for r in results:
        assert r["finish"] == "length"
        assert r["usage"].completion_tokens == max_tokens
        assert r["usage"].total_tokens == r["usage"].prompt_tokens + max_tokens
        hellos = r["text"].count("hello")
        assert 0 < hellos <= max_tokens and r["text"] == "hello" * hellos


def metric_values(server, names: tuple[str, ...]) -> dict[str, float]:
    """Sum of each named series on /metrics (over all label sets)."""
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    values = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$", line)
        if match and match.group(1) in values:
            values[match.group(1)] += float(match.group(3))
    return values


ENGINE_SERIES = ("vllm:num_requests_running", "vllm:num_requests_waiting",
                 "gptoss_engine_requests_running", "gptoss_engine_requests_waiting")


def check_context_length(server) -> None:
    client = server.client()
    long_text = "word " * 5000  # about 5,000 tokens > max_model_len 4,096
    try:
        client.chat.completions.create(model=server.model, max_tokens=4,
                                       messages=[{"role": "user", "content": long_text}])
    except openai.BadRequestError as exc:
        assert exc.status_code == 400
        assert exc.code == "context_length_exceeded", exc.body
    else:
        raise AssertionError("a prompt over max_model_len was accepted")
    check_completion(server, max_tokens=4)  # the engine still serves


def sse_lines(response: httpx.Response):
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: "):]
            yield payload if payload == "[DONE]" else json.loads(payload)


def now() -> float:
    return time.monotonic()
