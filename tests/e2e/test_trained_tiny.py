"""End-to-end: the trained gpt-oss-tiny through ``python -m server --engine vllm`` and the openai SDK.

Held-out prompts (addition pairs and cities the weather kinds of the training never showed), greedy:
reasoning in both fields, the exact answer, exact tool calls, the exact answer after a tool result,
streamed deltas that concatenate to the non-stream message. Sampled with n=4 at temperature 1.0:
every choice is well-formed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from training.train import (
    CAPITALS,
    HELDOUT_ADD_PAIRS,
    add_answer,
    capital_answer,
    weather_answer,
    weather_arguments,
    weather_result,
    weather_tool,
)

pytestmark = pytest.mark.engine

MODEL = "gpt-oss-tiny"
# Every held-out pair: sums with a two-digit operand that the training never asked or worked out
# (tests/unit/test_training_data.py checks it). The model works them out in steps it was trained on.
ADD_CASES = HELDOUT_ADD_PAIRS
# Weather: cities that never occur in the weather kinds of the training data (the model copies them
# from the question into the call and into the answer; tests/unit/test_training_data.py checks that
# they are held out), with results for the follow-up.
WEATHER_CASES = [("Madrid", 18, "sunny"), ("Rome", -3, "rainy"), ("Amsterdam", 25, "cloudy"),
                 ("Bern", 8, "snowy"), ("Singapore", 12, "foggy"), ("Washington", 31, "windy")]
TOOLS = [weather_tool()]


def add_messages(a: int, b: int) -> list[dict]:
    return [{"role": "user", "content": f"What is {a} plus {b}?"}]


def capital_messages(country: str) -> list[dict]:
    return [{"role": "user", "content": f"What is the capital of {country}?"}]


def weather_messages(city: str) -> list[dict]:
    return [{"role": "user", "content": f"What is the weather in {city}?"}]


def reasoning_of(message) -> tuple[str | None, str | None]:
    extra = message.model_extra or {}
    return extra.get("reasoning_content"), extra.get("reasoning")


def assert_reasoning(message) -> None:
    reasoning_content, reasoning = reasoning_of(message)
    assert reasoning_content, message
    assert reasoning == reasoning_content


def complete(client, messages, **kwargs):
    return client.chat.completions.create(model=MODEL, messages=messages, temperature=0,
                                          **kwargs)


def follow_up(messages: list[dict], message, temperature: int, condition: str) -> list[dict]:
    """The conversation with the assistant's tool call and the tool's result appended."""
    call = message.tool_calls[0]
    return messages + [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call.id, "type": "function",
            "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": weather_result(temperature, condition)},
    ]


# --- greedy, non-stream ---------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b"), ADD_CASES)
def test_heldout_addition(client, a, b):
    choice = complete(client, add_messages(a, b)).choices[0]
    assert choice.finish_reason == "stop"
    assert_reasoning(choice.message)
    assert choice.message.content == add_answer(a, b)
    assert not choice.message.tool_calls


@pytest.mark.parametrize("country", ["France", "Japan", "Peru", "Norway"])
def test_capital(client, country):
    choice = complete(client, capital_messages(country)).choices[0]
    assert choice.finish_reason == "stop"
    assert_reasoning(choice.message)
    assert choice.message.content == capital_answer(country)


@pytest.mark.parametrize(("city", "temperature", "condition"), WEATHER_CASES)
def test_heldout_tool_call_and_follow_up(client, city, temperature, condition):
    messages = weather_messages(city)
    choice = complete(client, messages, tools=TOOLS).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert_reasoning(choice.message)
    assert not choice.message.content
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": city}
    assert call.function.arguments == weather_arguments(city)

    after = complete(client, follow_up(messages, choice.message, temperature, condition),
                     tools=TOOLS).choices[0]
    assert after.finish_reason == "stop"
    assert_reasoning(after.message)
    assert after.message.content == weather_answer(city, temperature, condition)
    assert not after.message.tool_calls


# --- stream == non-stream -----------------------------------------------------------------------

@dataclass
class Streamed:
    content: str = ""
    reasoning_content: str = ""
    reasoning: str = ""
    calls: dict = field(default_factory=dict)  # index -> [id, name, arguments]
    finish_reason: str | None = None


def stream(client, messages, **kwargs) -> dict[int, Streamed]:
    choices: dict[int, Streamed] = {}
    for chunk in client.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                                **kwargs):
        for choice in chunk.choices:
            out = choices.setdefault(choice.index, Streamed())
            delta = choice.delta
            out.content += delta.content or ""
            extra = delta.model_extra or {}
            out.reasoning_content += extra.get("reasoning_content") or ""
            out.reasoning += extra.get("reasoning") or ""
            for call in delta.tool_calls or ():
                slot = out.calls.setdefault(call.index, [None, "", ""])
                slot[0] = slot[0] or call.id
                if call.function:
                    slot[1] += call.function.name or ""
                    slot[2] += call.function.arguments or ""
            if choice.finish_reason:
                assert out.finish_reason is None
                out.finish_reason = choice.finish_reason
    return choices


def assert_stream_equals_message(streamed: Streamed, choice) -> None:
    message = choice.message
    reasoning_content, reasoning = reasoning_of(message)
    assert streamed.finish_reason == choice.finish_reason
    assert streamed.content == (message.content or "")
    assert streamed.reasoning_content == reasoning_content
    assert streamed.reasoning == reasoning
    calls = [(name, arguments) for _, name, arguments in
             (streamed.calls[i] for i in sorted(streamed.calls))]
    assert calls == [(c.function.name, c.function.arguments) for c in message.tool_calls or ()]
    assert all(call_id for call_id, _, _ in streamed.calls.values())


STREAM_CASES = {
    "addition": (add_messages(*HELDOUT_ADD_PAIRS[1]), {}),
    "capital": (capital_messages("Italy"), {}),
    "tool_call": (weather_messages(WEATHER_CASES[0][0]), {"tools": TOOLS}),
}


@pytest.mark.parametrize("case", sorted(STREAM_CASES))
def test_stream_concatenates_to_the_message(client, case):
    messages, kwargs = STREAM_CASES[case]
    choice = complete(client, messages, **kwargs).choices[0]
    streamed = stream(client, messages, temperature=0, **kwargs)
    assert list(streamed) == [0]
    assert streamed[0].reasoning_content
    assert_stream_equals_message(streamed[0], choice)


def test_stream_follow_up_after_tool_result(client):
    city, temperature, condition = WEATHER_CASES[1]
    messages = weather_messages(city)
    first = complete(client, messages, tools=TOOLS).choices[0]
    assert first.finish_reason == "tool_calls"
    conversation = follow_up(messages, first.message, temperature, condition)
    choice = complete(client, conversation, tools=TOOLS).choices[0]
    streamed = stream(client, conversation, temperature=0, tools=TOOLS)
    assert streamed[0].content == weather_answer(city, temperature, condition)
    assert_stream_equals_message(streamed[0], choice)


# --- sampled, n=4 -------------------------------------------------------------------------------

SAMPLED_CASES = {
    "addition": (add_messages(*HELDOUT_ADD_PAIRS[2]), {}),
    "capital": (capital_messages(sorted(CAPITALS)[0]), {}),
    "tool_call": (weather_messages(WEATHER_CASES[2][0]), {"tools": TOOLS}),
}


def assert_well_formed(message, finish_reason: str) -> None:
    reasoning_content, reasoning = reasoning_of(message)
    assert reasoning_content and reasoning == reasoning_content
    if finish_reason == "tool_calls":
        assert message.tool_calls
        for call in message.tool_calls:
            assert call.function.name
            assert isinstance(json.loads(call.function.arguments), dict)
    else:
        assert finish_reason == "stop"
        assert message.content


@pytest.mark.parametrize("case", sorted(SAMPLED_CASES))
def test_n4_sampled_choices_are_well_formed(client, case):
    messages, kwargs = SAMPLED_CASES[case]
    response = client.chat.completions.create(model=MODEL, messages=messages, n=4,
                                              temperature=1.0, seed=7, **kwargs)
    assert sorted(c.index for c in response.choices) == [0, 1, 2, 3]
    for choice in response.choices:
        assert_well_formed(choice.message, choice.finish_reason)


@pytest.mark.parametrize("case", sorted(SAMPLED_CASES))
def test_n4_sampled_stream_is_well_formed(client, case):
    messages, kwargs = SAMPLED_CASES[case]
    streamed = stream(client, messages, n=4, temperature=1.0, seed=11, **kwargs)
    assert sorted(streamed) == [0, 1, 2, 3]
    for out in streamed.values():
        assert out.reasoning_content and out.reasoning == out.reasoning_content
        if out.finish_reason == "tool_calls":
            assert out.calls
            for _, name, arguments in out.calls.values():
                assert name
                assert isinstance(json.loads(arguments), dict)
        else:
            assert out.finish_reason == "stop"
            assert out.content
