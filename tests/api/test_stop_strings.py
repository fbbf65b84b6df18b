"""Stop strings through the openai SDK, for every --stream-interval x engine chunk size: the
content is what came before the stop string, and the stream's deltas add up to the same."""

from __future__ import annotations

import pytest

from tests.api.helpers import complete
from tests.conftest import MODEL

USER = [{"role": "user", "content": "Hi"}]

GREETING = ("<|channel|>analysis<|message|>The user greets me. I should answer briefly.<|end|>"
            "<|start|>assistant<|channel|>final<|message|>Hello! How can I help you today?"
            "<|return|>")
WEATHER = ("<|channel|>analysis<|message|>The tool says 18°C and sunny.<|end|><|start|>assistant"
           "<|channel|>final<|message|>It is 18°C and sunny in Paris. ☀️<|return|>")

CASES = {  # completion -> [(stops, expected content)]
    GREETING: [
        (["Hello"], ""),                                     # at the beginning
        (["lo! H", "xyz"], "Hel"),                           # across tokens
        (["w can"], "Hello! Ho"),
        (["today?"], "Hello! How can I help you "),          # at the end
        (["help", "How"], "Hello! "),                        # the first one reached
        (["w you"], "Hello! How can I help you today?"),     # held back, then released
        (["xyz"], "Hello! How can I help you today?"),       # never seen
    ],
    WEATHER: [
        (["18°C"], "It is "),                                # multi-byte; also in the reasoning
        (["°C"], "It is 18"),
        (["☀️"], "It is 18°C and sunny in Paris. "),
        (["18°F"], "It is 18°C and sunny in Paris. ☀️"),
    ],
}
REASONING = {GREETING: "The user greets me. I should answer briefly.",
             WEATHER: "The tool says 18°C and sunny."}


@pytest.mark.parametrize("text", list(CASES), ids=["greeting", "weather"])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7], ids=lambda k: f"chunk{k}")
@pytest.mark.parametrize("interval", [1, 2, 3, 8], ids=lambda k: f"interval{k}")
def test_stop_strings_for_every_stream_interval_and_chunking(serve, text, chunk_size, interval):
    server = serve([text], chunk_size=chunk_size, stream_interval=interval)
    client = server.client()
    for stops, expected in CASES[text]:
        [whole], _ = complete(client, False, model=MODEL, messages=USER, stop=stops)
        [streamed], _ = complete(client, True, model=MODEL, messages=USER, stop=stops)
        assert whole.content == expected, stops
        assert streamed.content == whole.content, stops
        for choice in (whole, streamed):
            assert choice.finish_reason == "stop", stops
            assert choice.reasoning_content == choice.reasoning == REASONING[text], stops
