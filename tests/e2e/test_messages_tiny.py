"""End-to-end: Anthropic Messages (``/v1/messages``) on the trained gpt-oss-tiny, through the
official anthropic SDK.

The real server (``python -m server --engine vllm --model gpt-oss-tiny``, tests/e2e/conftest.py),
greedy (temperature 0, in ``extra_body``: the SDK has no such argument), held-out prompts. With
``thinking`` enabled: a ``thinking`` block with the model's reasoning and a signature, then a
``text`` block with the exact answer; without it, no thinking block. ``client.messages.stream()``'s
final message equals the non-stream message (ids aside). The weather tool loop as a user of the SDK
runs it: a ``tool_use`` with the held-out city, then the assistant's blocks (thinking with its
signature, tool_use) sent back with a ``tool_result``, and the answer from the result.
``count_tokens`` equals ``usage.input_tokens``.
"""

from __future__ import annotations

import pytest

from tests.e2e.prompts import ANSWER_CASES, weather_question
from training.train import (
    weather_answer,
    weather_arguments,
    weather_result,
    weather_tool,
)

pytestmark = pytest.mark.engine

MODEL = "gpt-oss-tiny"
# The get_weather tool of the training data in Anthropic's shape (input_schema, no wrapper).
_FUNCTION = weather_tool()["function"]
WEATHER_TOOL = {"name": _FUNCTION["name"], "description": _FUNCTION["description"],
                "input_schema": _FUNCTION["parameters"]}
TOOLS = [WEATHER_TOOL]
THINKING = {"type": "enabled", "budget_tokens": 2048}  # below 4,096: low effort
# The tool loop thinks at medium effort (the server's default, which Chat's and Responses' tool loop
# tests use): at low effort the tiny model answers a positive result with a minus sign ("It is
# -18°C and sunny in Madrid.", through Chat too: test_low_effort_tool_loop_is_chats).
TOOL_THINKING = {"type": "enabled", "budget_tokens": 8192}  # 4,096 to 16,383: medium
MAX_TOKENS = 1024
# Greedy. The anthropic SDK (2.x) has no ``temperature`` argument any more (newer Claude models
# fix their sampling), so it goes in the body as any other field the SDK does not know.
GREEDY = {"extra_body": {"temperature": 0}}
# Cities held out of the weather training (training.train.HELDOUT_WEATHER_CITIES), with the
# results the tool returns for them.
WEATHER_CASES = [("Madrid", 18, "sunny"), ("Rome", -3, "rainy"), ("Bern", 8, "snowy")]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def create(client, **kwargs):
    return client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, **GREEDY, **kwargs)


def assert_message(message) -> None:
    assert message.type == "message" and message.role == "assistant", message
    assert message.id.startswith("msg_") and message.model == MODEL
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def assert_thought_and_answered(message, answer: str) -> None:
    """A thinking block (non-empty text, a signature), then the exact answer; end_turn."""
    assert_message(message)
    assert [block.type for block in message.content] == ["thinking", "text"], message.content
    thinking, text = message.content
    assert thinking.thinking.strip() and thinking.signature
    assert text.text == answer
    assert message.stop_reason == "end_turn" and message.stop_sequence is None


def tool_use_of(message, city: str):
    """The message's single get_weather call, asserted to ask for ``city``, after thinking."""
    assert_message(message)
    assert [block.type for block in message.content] == ["thinking", "tool_use"], \
        message.content
    thinking, call = message.content
    assert thinking.thinking.strip() and thinking.signature
    assert call.id.startswith("toolu_") and call.name == "get_weather"
    assert call.input == {"city": city}
    assert message.stop_reason == "tool_use" and message.stop_sequence is None
    return call


def follow_up(question: str, first, temperature: int, condition: str) -> list[dict]:
    """The conversation as an anthropic SDK user sends it back: the assistant's content blocks as
    they came (thinking with its signature, tool_use), then the tool's result."""
    call = first.content[-1]
    return user(question) + [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": weather_result(temperature, condition)}]},
    ]


# --- create ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(ANSWER_CASES))
def test_create_thinks_and_answers(anthropic_client, case):
    question, answer = ANSWER_CASES[case]
    assert_thought_and_answered(create(anthropic_client, messages=user(question),
                                       thinking=THINKING), answer)


@pytest.mark.parametrize("thinking", [None, {"type": "disabled"}], ids=["absent", "disabled"])
@pytest.mark.parametrize("case", sorted(ANSWER_CASES))
def test_without_thinking_no_thinking_block(anthropic_client, case, thinking):
    """The model still reasons (output tokens count it), but only the answer is returned."""
    question, answer = ANSWER_CASES[case]
    extra = {} if thinking is None else {"thinking": thinking}
    message = create(anthropic_client, messages=user(question), **extra)
    assert_message(message)
    assert [(block.type, block.text) for block in message.content] == [("text", answer)]
    assert message.stop_reason == "end_turn"
    # reasoning happened: far more output tokens than the answer's few
    assert message.usage.output_tokens > 10


def test_system_prompt(anthropic_client):
    question, answer = ANSWER_CASES["capital"]
    message = create(anthropic_client, messages=user(question), thinking=THINKING,
                     system=[{"type": "text", "text": "You are a helpful assistant.",
                              "cache_control": {"type": "ephemeral"}}])
    assert_thought_and_answered(message, answer)


# --- the weather tool loop -------------------------------------------------------------------------

@pytest.mark.parametrize(("city", "temperature", "condition"), WEATHER_CASES)
def test_tool_loop(anthropic_client, city, temperature, condition):
    question = weather_question(city)
    first = create(anthropic_client, messages=user(question), tools=TOOLS,
                   thinking=TOOL_THINKING)
    tool_use_of(first, city)
    after = create(anthropic_client, messages=follow_up(question, first, temperature, condition),
                   tools=TOOLS, thinking=TOOL_THINKING)
    assert_thought_and_answered(after, weather_answer(city, temperature, condition))


def test_tool_loop_without_thinking(anthropic_client):
    """Thinking hidden: the call alone, sent back alone, and the answer alone."""
    city, temperature, condition = WEATHER_CASES[0]
    question = weather_question(city)
    first = create(anthropic_client, messages=user(question), tools=TOOLS)
    assert [block.type for block in first.content] == ["tool_use"], first.content
    assert first.content[0].input == {"city": city} and first.stop_reason == "tool_use"
    after = create(anthropic_client, messages=follow_up(question, first, temperature, condition),
                   tools=TOOLS)
    assert [(block.type, block.text) for block in after.content] == [
        ("text", weather_answer(city, temperature, condition))]
    assert after.stop_reason == "end_turn"


def test_tool_result_with_text_blocks(anthropic_client):
    """The same tool result as a list of text blocks reads the same as the string."""
    city, temperature, condition = WEATHER_CASES[1]
    question = weather_question(city)
    first = create(anthropic_client, messages=user(question), tools=TOOLS,
                   thinking=TOOL_THINKING)
    call = tool_use_of(first, city)
    messages = user(question) + [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": [
            {"type": "text", "text": weather_result(temperature, condition)}]}]}]
    after = create(anthropic_client, messages=messages, tools=TOOLS, thinking=TOOL_THINKING)
    assert_thought_and_answered(after, weather_answer(city, temperature, condition))


def test_low_effort_tool_loop_is_chats(anthropic_client, client):
    """At low effort (budget 2,048) the loop's prompt and answer are Chat's at low effort, token
    for token: whatever the tiny model makes of it, the Messages surface renders what Chat does."""
    city, temperature, condition = WEATHER_CASES[0]
    question = weather_question(city)
    first = create(anthropic_client, messages=user(question), tools=TOOLS, thinking=THINKING)
    thinking, call = first.content
    tool_use_of(first, city)
    after = create(anthropic_client, messages=follow_up(question, first, temperature, condition),
                   tools=TOOLS, thinking=THINKING)
    assert [block.type for block in after.content] == ["thinking", "text"], after.content

    chat = client.chat.completions.create(
        model=MODEL, temperature=0, reasoning_effort="low", tools=[weather_tool()],
        messages=user(question) + [
            {"role": "assistant", "content": None, "reasoning_content": thinking.thinking,
             "tool_calls": [{"id": "call_1", "type": "function", "function": {
                 "name": "get_weather", "arguments": weather_arguments(city)}}]},
            {"role": "tool", "tool_call_id": "call_1",
             "content": weather_result(temperature, condition)}])
    message = chat.choices[0].message
    assert after.usage.input_tokens == chat.usage.prompt_tokens
    assert after.usage.output_tokens == chat.usage.completion_tokens
    assert after.content[0].thinking == message.model_extra["reasoning_content"]
    assert after.content[1].text == message.content


# --- stream == non-stream --------------------------------------------------------------------------

def normalised(message) -> dict:
    """A message as a dict without what differs between two runs of the same request: the ids
    (the message's and the tool_use blocks') and the prefix-cache hits (the second run of a
    prompt finds more of it in vLLM's cache than the first)."""
    body = message.model_dump(mode="json")
    del body["id"]
    cached = body["usage"].pop("cache_read_input_tokens")
    assert 0 <= cached <= body["usage"]["input_tokens"]
    for block in body["content"]:
        if block["type"] == "tool_use":
            del block["id"]
    return body


def stream_events(client, **kwargs):
    """All events of ``client.messages.stream(...)`` and its final message."""
    with client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, **GREEDY,
                                **kwargs) as stream:
        events = list(stream)
        final = stream.get_final_message()
    return events, final


def assert_stream_consistent(events, final) -> None:
    """message_start first and message_stop last; each block started, filled by its deltas and
    stopped in order; the message_delta carries the stop reason."""
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    assert events[0].message.id == final.id
    started = [e.index for e in events if e.type == "content_block_start"]
    stopped = [e.index for e in events if e.type == "content_block_stop"]
    assert started == stopped == list(range(len(final.content)))
    texts: dict[int, str] = {}
    signatures: dict[int, str] = {}
    for event in events:
        if event.type != "content_block_delta":
            continue
        delta = event.delta
        if delta.type == "signature_delta":
            signatures[event.index] = delta.signature
            continue
        piece = {"text_delta": "text", "thinking_delta": "thinking",
                 "input_json_delta": "partial_json"}[delta.type]
        texts[event.index] = texts.get(event.index, "") + getattr(delta, piece)
    for index, block in enumerate(final.content):
        if block.type == "thinking":
            assert texts[index] == block.thinking and signatures[index] == block.signature
        elif block.type == "text":
            assert texts[index] == block.text
        else:
            assert texts[index] == weather_arguments(block.input["city"])
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert delta.delta.stop_reason == final.stop_reason
    assert delta.usage.output_tokens == final.usage.output_tokens


STREAM_CASES = {
    "addition": {"messages": user(ANSWER_CASES["addition"][0]), "thinking": THINKING},
    "capital": {"messages": user(ANSWER_CASES["capital"][0]), "thinking": THINKING},
    "capital_hidden": {"messages": user(ANSWER_CASES["capital"][0])},
    "tool_use": {"messages": user(weather_question(WEATHER_CASES[0][0])), "tools": TOOLS,
                 "thinking": TOOL_THINKING},
}


@pytest.mark.parametrize("case", sorted(STREAM_CASES))
def test_stream_final_equals_create(anthropic_client, case):
    kwargs = STREAM_CASES[case]
    message = create(anthropic_client, **kwargs)
    events, final = stream_events(anthropic_client, **kwargs)
    assert_stream_consistent(events, final)
    assert normalised(final) == normalised(message)


def test_stream_after_tool_result_equals_create(anthropic_client):
    city, temperature, condition = WEATHER_CASES[2]
    question = weather_question(city)
    first = create(anthropic_client, messages=user(question), tools=TOOLS,
                   thinking=TOOL_THINKING)
    tool_use_of(first, city)
    kwargs = {"messages": follow_up(question, first, temperature, condition), "tools": TOOLS,
              "thinking": TOOL_THINKING}
    message = create(anthropic_client, **kwargs)
    events, final = stream_events(anthropic_client, **kwargs)
    assert_stream_consistent(events, final)
    assert_thought_and_answered(final, weather_answer(city, temperature, condition))
    assert normalised(final) == normalised(message)


# --- count_tokens ----------------------------------------------------------------------------------

def test_count_tokens_equals_usage(anthropic_client):
    city, temperature, condition = WEATHER_CASES[0]
    question = weather_question(city)
    requests = [
        {"messages": user(ANSWER_CASES["addition"][0])},
        {"messages": user(ANSWER_CASES["capital"][0]), "thinking": THINKING,
         "system": "You are a helpful assistant."},
        {"messages": user(question), "tools": TOOLS, "thinking": TOOL_THINKING},
    ]
    first = create(anthropic_client, **requests[-1])
    tool_use_of(first, city)
    requests.append({"messages": follow_up(question, first, temperature, condition),
                     "tools": TOOLS, "thinking": TOOL_THINKING})
    counts = []
    for request in requests:
        counted = anthropic_client.messages.count_tokens(model=MODEL, **request)
        message = create(anthropic_client, **request)
        assert counted.input_tokens == message.usage.input_tokens, request
        counts.append(counted.input_tokens)
    # the tool's declaration and the history each add to the prompt
    assert counts[0] < counts[2] < counts[3]
