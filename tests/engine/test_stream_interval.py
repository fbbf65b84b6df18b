"""--stream-interval 8 on the real CPU engine: vLLM's output processor batches each request's tokens
(the server hands it the interval, tests/engine/test_engine_args.py), and nothing is lost on the
way: the streamed content, logprobs and usage equal the non-streamed answer's, in about one frame
per 8 tokens."""

from __future__ import annotations

import math

import pytest

from tests.engine.conftest import start_server
from tests.engine.helpers import CHATTY_BIAS, MESSAGES

pytestmark = pytest.mark.engine

INTERVAL = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server("gpt-oss-tiny-random", tmp_path_factory.mktemp("interval"),
                          "--stream-interval", str(INTERVAL))
    yield server
    server.stop()


def test_batched_stream_equals_the_answer(server):
    client = server.client()
    kwargs = {"model": server.model, "messages": MESSAGES, "max_tokens": 60, "temperature": 0,
              "logit_bias": CHATTY_BIAS, "logprobs": True, "top_logprobs": 2}
    answer = client.chat.completions.create(**kwargs)
    content, tokens, usage, frames = "", [], None, 0
    for chunk in client.chat.completions.create(**kwargs, stream=True,
                                                stream_options={"include_usage": True}):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.delta.content:
                frames += 1
                content += choice.delta.content
            if choice.logprobs and choice.logprobs.content:
                tokens += [(entry.token, len(entry.top_logprobs)) for entry in choice.logprobs.content]
    assert answer.choices[0].message.content  # the bias makes content from the first tokens
    assert content == answer.choices[0].message.content
    assert tokens == [(entry.token, 2) for entry in answer.choices[0].logprobs.content]
    assert usage.completion_tokens == answer.usage.completion_tokens
    assert frames <= math.ceil(usage.completion_tokens / INTERVAL) + 1
