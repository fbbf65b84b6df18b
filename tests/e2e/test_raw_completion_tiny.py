"""End-to-end: raw Completions (``/v1/completions``) on the trained gpt-oss-tiny, through the
official openai SDK.

A chat prompt rendered by ``POST /tokenize`` (its ``tokens`` and the rendered ``prompt`` text,
special tokens spelled out) is completed raw, greedy: sent as text and as token ids, it gives the
same continuation, which is Harmony as text (``<|channel|>analysis<|message|>...``) and ends with
the exact final answer (the closing ``<|return|>`` is left out); ``usage.prompt_tokens`` is
/tokenize's count; the stream concatenates to the same text; it is the chat answer's reasoning and
content, spelled as Harmony.
"""

from __future__ import annotations

import httpx
import pytest

from training.train import (
    HELDOUT_ADD_PAIRS,
    add_answer,
    capital_answer,
    weather_arguments,
    weather_tool,
)

pytestmark = pytest.mark.engine

MODEL = "gpt-oss-tiny"
MAX_TOKENS = 200
FINAL = "<|end|><|start|>assistant<|channel|>final<|message|>"
ADDITION = HELDOUT_ADD_PAIRS[1]
CASES = {
    "addition": ([{"role": "user", "content": f"What is {ADDITION[0]} plus {ADDITION[1]}?"}],
                 add_answer(*ADDITION)),
    "capital": ([{"role": "user", "content": "What is the capital of Peru?"}],
                capital_answer("Peru")),
}


def tokenize(server, messages: list[dict], **extra) -> dict:
    response = httpx.post(server.base_url + "/tokenize", timeout=60,
                          json={"model": MODEL, "messages": messages, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["tokens"]) > 0
    assert body["prompt"].startswith("<|start|>system<|message|>")
    assert body["prompt"].endswith("<|start|>assistant")  # the model's turn is next
    return body


def complete(client, prompt, **kwargs):
    return client.completions.create(model=MODEL, prompt=prompt, temperature=0, **kwargs)


def streamed(client, prompt, **kwargs) -> tuple[str, list[str | None], object]:
    """The stream's text, its finish reasons and its usage chunk's usage."""
    text, finishes, usage = "", [], None
    for chunk in complete(client, prompt, stream=True,
                          stream_options={"include_usage": True}, **kwargs):
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
        for choice in chunk.choices:
            assert choice.index == 0
            text += choice.text
            finishes.append(choice.finish_reason)
    return text, finishes, usage


def assert_harmony_answer(text: str, answer: str) -> str:
    """Reasoning on the analysis channel, then the exact final answer, spelled as text; the
    reasoning is returned."""
    assert text.startswith("<|channel|>analysis<|message|>"), text
    assert text.endswith(FINAL + answer), text
    assert "<|return|>" not in text
    reasoning = text[len("<|channel|>analysis<|message|>"):-len(FINAL + answer)]
    assert reasoning.strip() and "<|" not in reasoning, text
    return reasoning


@pytest.mark.parametrize("case", sorted(CASES))
def test_text_and_token_prompts_give_the_same_harmony(trained_server, client, case):
    messages, answer = CASES[case]
    rendered = tokenize(trained_server, messages)

    as_text = complete(client, rendered["prompt"], max_tokens=MAX_TOKENS)
    as_tokens = complete(client, rendered["tokens"], max_tokens=MAX_TOKENS)
    for completion in (as_text, as_tokens):
        assert completion.object == "text_completion" and completion.model == MODEL
        assert completion.id.startswith("cmpl-")
        assert len(completion.choices) == 1
        choice = completion.choices[0]
        assert choice.index == 0 and choice.finish_reason == "stop"
        usage = completion.usage
        assert usage.prompt_tokens == rendered["count"]
        assert 0 < usage.completion_tokens < MAX_TOKENS
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    text = as_text.choices[0].text
    assert as_tokens.choices[0].text == text
    assert as_tokens.usage == as_text.usage
    reasoning = assert_harmony_answer(text, answer)

    # the same prompt through chat: the raw text is its reasoning and content, in Harmony
    chat = client.chat.completions.create(model=MODEL, messages=messages, temperature=0)
    message = chat.choices[0].message
    assert message.content == answer
    assert message.model_extra["reasoning_content"] == reasoning
    assert chat.usage.prompt_tokens == rendered["count"]
    # the closing <|return|> counts as a generated token but is not in the text
    assert chat.usage.completion_tokens == as_text.usage.completion_tokens


@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_concatenates_to_the_same_text(trained_server, client, case):
    messages, answer = CASES[case]
    rendered = tokenize(trained_server, messages)
    whole = complete(client, rendered["prompt"], max_tokens=MAX_TOKENS)
    for prompt in (rendered["prompt"], rendered["tokens"]):
        text, finishes, usage = streamed(client, prompt, max_tokens=MAX_TOKENS)
        assert text == whole.choices[0].text
        assert finishes[-1] == "stop" and set(finishes[:-1]) <= {None}
        assert usage == whole.usage
    assert_harmony_answer(whole.choices[0].text, answer)


def test_tool_call_prompt_ends_at_the_call(trained_server, client):
    """With the weather tool declared, the continuation is the call in Harmony, up to (and not
    including) its <|call|>."""
    city = "Madrid"  # held out of the weather training
    rendered = tokenize(trained_server,
                        [{"role": "user", "content": f"What is the weather in {city}?"}],
                        tools=[weather_tool()])
    assert "namespace functions" in rendered["prompt"]
    completion = complete(client, rendered["prompt"], max_tokens=MAX_TOKENS)
    text = completion.choices[0].text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == rendered["count"]
    assert text.startswith("<|channel|>analysis<|message|>"), text
    # the recipient where the tiny model puts it, in the channel header
    assert "<|start|>assistant<|channel|>commentary to=functions.get_weather" in text, text
    assert text.endswith("<|message|>" + weather_arguments(city)), text
    assert "<|call|>" not in text
    text_stream, _, _ = streamed(client, rendered["tokens"], max_tokens=MAX_TOKENS)
    assert text_stream == text


def test_default_max_tokens_is_16(trained_server, client):
    """No max_tokens: 16, as OpenAI's default for this endpoint; the cut text begins the full
    continuation."""
    messages, _ = CASES["addition"]
    rendered = tokenize(trained_server, messages)
    cut = complete(client, rendered["tokens"])
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == 16
    whole = complete(client, rendered["tokens"], max_tokens=MAX_TOKENS)
    assert whole.choices[0].text.startswith(cut.choices[0].text)
    assert cut.choices[0].text.startswith("<|channel|>analysis<|message|>")


def test_batch_of_prompts(trained_server, client):
    """A batch of two prompts (as token ids, then as text): choice i continues prompt i."""
    (first, first_answer), (second, second_answer) = CASES["addition"], CASES["capital"]
    one, two = tokenize(trained_server, first), tokenize(trained_server, second)
    batch = complete(client, [one["tokens"], two["tokens"]], max_tokens=MAX_TOKENS)
    assert [choice.index for choice in batch.choices] == [0, 1]
    assert_harmony_answer(batch.choices[0].text, first_answer)
    assert_harmony_answer(batch.choices[1].text, second_answer)
    assert batch.usage.prompt_tokens == one["count"] + two["count"]
    texts = complete(client, [one["prompt"], two["prompt"]], max_tokens=MAX_TOKENS)
    assert [choice.text for choice in texts.choices] == [choice.text for choice in batch.choices]
