"""logprobs through the official SDKs over the scripted engine (whose logprobs are made-up
placeholders, see server/engine/scripted.py): they cover the visible content's tokens only (not
reasoning, not Harmony headers or control tokens), their texts concatenate to the content, in
streams chunk by chunk too, also when a stop string cuts or holds back text."""

from __future__ import annotations

import pytest

from tests.conftest import MODEL
from tests.corpus import COMPLETIONS

HI = [{"role": "user", "content": "hi"}]
VISIBLE = ["plain", "final_only", "multibyte", "preamble_then_tool", "long"]


def content_tokens(harmony, text: str) -> int:
    """How many tokens of a scripted completion are message-body tokens of final/preamble."""
    tokens = harmony.encode_completion(text)
    count, inside, header = 0, False, []
    for token in tokens:
        if token == harmony.special.message:
            inside = "analysis" not in harmony.decode_text(header) and "to=" not in \
                harmony.decode_text(header)
            header = []
        elif token >= harmony.special.first:
            inside = False
            header = [] if token == harmony.special.start else [*header, token]
        elif inside:
            count += 1
        else:
            header.append(token)
    return count


@pytest.mark.parametrize("name", VISIBLE)
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7], ids=lambda k: f"chunk{k}")
def test_chat_logprobs_cover_the_content_exactly(serve, harmony, name, chunk_size):
    server = serve([COMPLETIONS[name]], chunk_size=chunk_size)
    client = server.client()
    kwargs = {"model": MODEL, "messages": HI, "logprobs": True, "top_logprobs": 3}
    created = client.chat.completions.create(**kwargs)
    [choice] = created.choices
    entries = choice.logprobs.content
    assert "".join(e.token for e in entries) == (choice.message.content or "")
    assert len(entries) == content_tokens(harmony, COMPLETIONS[name])
    assert all(len(e.top_logprobs) == 3 and e.logprob <= 0 for e in entries)
    assert b"".join(bytes(e.bytes) for e in entries).decode() == (choice.message.content or "")
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    streamed = [e for c in chunks for ch in c.choices if ch.logprobs for e in ch.logprobs.content]
    assert [e.model_dump() for e in streamed] == [e.model_dump() for e in entries]


@pytest.mark.parametrize("stops", [["½"], ["日本"], ["C ✓"], ["zz"]])
@pytest.mark.parametrize("chunk_size", [1, 3], ids=lambda k: f"chunk{k}")
def test_chat_logprobs_follow_stop_strings(serve, stops, chunk_size):
    server = serve([COMPLETIONS["multibyte"]], chunk_size=chunk_size)
    client = server.client()
    kwargs = {"model": MODEL, "messages": HI, "logprobs": True, "stop": stops}
    created = client.chat.completions.create(**kwargs)
    text = created.choices[0].message.content
    assert "".join(e.token for e in created.choices[0].logprobs.content) == text
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    tokens = [e.token for c in chunks for ch in c.choices if ch.logprobs
              for e in ch.logprobs.content]
    assert "".join(tokens) == text == "".join(
        ch.delta.content or "" for c in chunks for ch in c.choices)


def test_no_logprobs_unless_asked(serve):
    server = serve([COMPLETIONS["plain"]])
    created = server.client().chat.completions.create(model=MODEL, messages=HI)
    assert created.choices[0].logprobs is None


@pytest.mark.parametrize("chunk_size", [1, 2, 7], ids=lambda k: f"chunk{k}")
def test_responses_output_text_logprobs(serve, chunk_size):
    server = serve([COMPLETIONS["multibyte"]], chunk_size=chunk_size)
    client = server.client()
    kwargs = {"model": MODEL, "input": "hi", "include": ["message.output_text.logprobs"],
              "top_logprobs": 2}
    created = client.responses.create(**kwargs)
    part = created.output[-1].content[0]
    assert "".join(e.token for e in part.logprobs) == part.text == created.output_text
    assert all(len(e.top_logprobs) == 2 for e in part.logprobs)
    with client.responses.stream(**kwargs) as stream:
        deltas = [e for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(e.token for d in deltas for e in d.logprobs) == part.text
    assert final.output[-1].content[0].logprobs == part.logprobs
    plain = client.responses.create(model=MODEL, input="hi")
    assert plain.output[-1].content[0].logprobs == []


def test_raw_completion_logprobs(serve, harmony):
    server = serve([COMPLETIONS["plain"]], chunk_size=2)
    client = server.client()
    kwargs = {"model": MODEL, "prompt": "hi", "logprobs": 2, "echo": True, "max_tokens": 50}
    created = client.completions.create(**kwargs)
    choice = created.choices[0]
    lp = choice.logprobs
    assert choice.text == "hi" + "".join(lp.tokens)
    assert lp.text_offset[0] == len("hi") and len(lp.tokens) == len(lp.token_logprobs)
    assert all(len(top) <= 2 for top in lp.top_logprobs)
    assert len(lp.tokens) == created.usage.completion_tokens - 1  # the closing <|return|>
    chunks = list(client.completions.create(stream=True, **kwargs))
    tokens = [t for c in chunks for ch in c.choices if ch.logprobs for t in ch.logprobs.tokens]
    offsets = [o for c in chunks for ch in c.choices if ch.logprobs
               for o in ch.logprobs.text_offset]
    assert tokens == lp.tokens and offsets == lp.text_offset
