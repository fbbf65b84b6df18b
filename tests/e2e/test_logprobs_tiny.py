"""logprobs on the real engine (vLLM's own values) with gpt-oss-tiny, greedy: they cover the
visible content only, concatenate to it, are log-probabilities (<= 0, top alternatives sorted
and summing to at most 1), the greedy pick is the top alternative, and streams carry the same
entries chunk by chunk. Chat, Responses and raw Completions."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.engine

MODEL = "gpt-oss-tiny"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def check_entries(entries, top: int) -> None:
    for entry in entries:
        alternatives = entry.top_logprobs
        assert entry.logprob <= 0 and len(alternatives) == top
        values = [a.logprob for a in alternatives]
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(v) for v in values) <= 1.0001
        assert bytes(entry.bytes) == bytes(alternatives[0].bytes)  # greedy: the top pick
        assert math.isclose(entry.logprob, values[0], abs_tol=1e-4)


def test_chat_logprobs_are_the_engines_and_cover_the_content(client):
    kwargs = {"model": MODEL, "messages": QUESTION, "temperature": 0, "logprobs": True,
              "top_logprobs": 4}
    created = client.chat.completions.create(**kwargs)
    [choice] = created.choices
    entries = choice.logprobs.content
    assert "Paris" in choice.message.content
    assert "".join(e.token for e in entries) == choice.message.content
    assert choice.message.model_extra["reasoning_content"]  # reasoning had tokens, not here
    assert len(entries) < created.usage.completion_tokens
    check_entries(entries, 4)
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    streamed = [e for c in chunks for ch in c.choices if ch.logprobs for e in ch.logprobs.content]
    assert [(e.token, e.bytes) for e in streamed] == [(e.token, e.bytes) for e in entries]
    assert all(math.isclose(a.logprob, b.logprob, abs_tol=1e-4)
               for a, b in zip(streamed, entries, strict=True))


def test_responses_output_text_logprobs(client):
    response = client.responses.create(model=MODEL, input="What is the capital of France?",
                                       temperature=0, top_logprobs=3,
                                       include=["message.output_text.logprobs"])
    part = response.output[-1].content[0]
    assert "Paris" in part.text and part.text == "".join(e.token for e in part.logprobs)
    check_entries(part.logprobs, 3)


def test_raw_completion_logprobs(client, trained_server):
    import httpx

    rendered = httpx.post(trained_server.base_url + "/tokenize",
                          json={"model": MODEL, "messages": QUESTION}).json()
    created = client.completions.create(model=MODEL, prompt=rendered["tokens"], temperature=0,
                                        max_tokens=60, logprobs=2)
    lp = created.choices[0].logprobs
    assert "".join(lp.tokens) == created.choices[0].text
    assert "<|channel|>final<|message|>The capital of France is Paris" in created.choices[0].text
    assert all(v <= 0 for v in lp.token_logprobs) and all(len(t) <= 2 for t in lp.top_logprobs)
