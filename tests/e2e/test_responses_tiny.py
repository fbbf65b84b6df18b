"""End-to-end: POST /v1/responses on the trained gpt-oss-tiny, through the official openai SDK.

The real server (``python -m server --engine vllm --model gpt-oss-tiny``, tests/e2e/conftest.py),
greedy, on held-out prompts: a ``reasoning`` item with non-empty ``reasoning_text`` and a message
with the exact answer; ``client.responses.stream()`` accepts every stream and its final response
equals the non-stream one field by field (ids and timestamps aside); the weather tool loop by
sending the output items back with a ``function_call_output``, and by ``previous_response_id``;
``max_output_tokens`` cutting the output gives ``incomplete``.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.prompts import ADDITION, ANSWER_CASES, add_question, capital_question, weather_question
from training.train import (
    weather_answer,
    weather_arguments,
    weather_result,
    weather_tool,
)

pytestmark = pytest.mark.engine

MODEL = "gpt-oss-tiny"
# The get_weather tool of the training data, in the Responses shape (no "function" wrapper).
WEATHER_TOOL = {"type": "function", **weather_tool()["function"]}
TOOLS = [WEATHER_TOOL]
# Cities held out of the weather training (training.train.HELDOUT_WEATHER_CITIES), with the
# results the tool returns for them.
WEATHER_CASES = [("Madrid", 18, "sunny"), ("Amsterdam", 25, "cloudy"), ("Bern", 8, "snowy")]




def create(client, **kwargs):
    return client.responses.create(model=MODEL, temperature=0, **kwargs)


def assert_reasoned_answer(response, answer: str) -> None:
    """Completed, with a reasoning item (reasoning_text, no summary) then the exact answer."""
    assert response.status == "completed", response
    assert response.error is None and response.incomplete_details is None
    assert [item.type for item in response.output] == ["reasoning", "message"], response.output
    reasoning, message = response.output
    assert reasoning.summary == []
    assert [part.type for part in reasoning.content] == ["reasoning_text"]
    assert reasoning.content[0].text.strip()
    assert reasoning.status == "completed"
    assert message.role == "assistant" and message.status == "completed"
    assert [(part.type, part.text, part.annotations) for part in message.content] == [
        ("output_text", answer, [])]
    assert response.output_text == answer
    usage = response.usage
    assert 0 < usage.output_tokens_details.reasoning_tokens < usage.output_tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def function_call_of(response, city: str):
    """The response's single get_weather call, asserted to ask for ``city``."""
    assert response.status == "completed", response
    assert [item.type for item in response.output] == ["reasoning", "function_call"], \
        response.output
    assert response.output[0].content[0].text.strip()
    call = response.output[1]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": city}
    assert call.arguments == weather_arguments(city)
    assert call.call_id and call.id and call.status == "completed"
    assert response.output_text == ""
    return call


# --- create ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(ANSWER_CASES))
def test_create_reasons_and_answers(client, case):
    question, answer = ANSWER_CASES[case]
    assert_reasoned_answer(create(client, input=question), answer)


def test_create_with_message_items_and_instructions(client):
    """The same question as a list of input items (a user message with input_text parts)."""
    question, answer = ANSWER_CASES["capital"]
    response = create(client, instructions="You are a helpful assistant.",
                      input=[{"role": "user",
                              "content": [{"type": "input_text", "text": question}]}])
    assert_reasoned_answer(response, answer)
    assert response.instructions == "You are a helpful assistant."


# --- the weather tool loop -------------------------------------------------------------------------

@pytest.mark.parametrize(("city", "temperature", "condition"), WEATHER_CASES)
def test_tool_loop_with_output_items(client, city, temperature, condition):
    question = [{"role": "user", "content": weather_question(city)}]
    first = create(client, input=question, tools=TOOLS)
    call = function_call_of(first, city)

    # As OpenAI's function-calling guide does it: the output items as they came, then the result.
    follow_up = question + first.output + [{
        "type": "function_call_output", "call_id": call.call_id,
        "output": weather_result(temperature, condition)}]
    after = create(client, input=follow_up, tools=TOOLS)
    assert_reasoned_answer(after, weather_answer(city, temperature, condition))


@pytest.mark.parametrize(("city", "temperature", "condition"), WEATHER_CASES[:2])
def test_tool_loop_with_previous_response_id(client, city, temperature, condition):
    first = create(client, input=weather_question(city), tools=TOOLS)
    call = function_call_of(first, city)

    after = create(client, previous_response_id=first.id, tools=TOOLS, input=[{
        "type": "function_call_output", "call_id": call.call_id,
        "output": weather_result(temperature, condition)}])
    assert_reasoned_answer(after, weather_answer(city, temperature, condition))
    assert after.previous_response_id == first.id
    # The stored conversation is the earlier response's; only the new item is this one's input.
    items = client.responses.input_items.list(after.id).data
    assert [item.type for item in items] == ["function_call_output"]


# --- max_output_tokens -----------------------------------------------------------------------------

def test_max_output_tokens_is_incomplete(client):
    response = create(client, input=add_question(*ADDITION), max_output_tokens=5)
    assert response.status == "incomplete", response
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.error is None
    assert response.max_output_tokens == 5
    assert response.usage.output_tokens == 5
    # Five tokens are inside the reasoning: it was cut, and no answer came.
    assert [item.type for item in response.output] == ["reasoning"]
    assert response.output[0].status == "incomplete"
    assert response.output_text == ""


# --- stream == non-stream --------------------------------------------------------------------------

def comparable(response) -> dict:
    """A response as a dict without what differs between two runs of the same request: the ids
    (the response's, the items', the calls') and created_at; and without ``parsed`` and
    ``parsed_arguments``, which only the stream helper's ParsedResponse carries."""
    body = response.model_dump()
    del body["id"], body["created_at"]
    for item in body["output"]:
        item.pop("id")
        item.pop("call_id", None)
        item.pop("parsed_arguments", None)
        for part in item.get("content") or ():
            part.pop("parsed", None)
    return body


def stream_events(client, **kwargs):
    """All events of ``client.responses.stream(...)`` and its final response."""
    with client.responses.stream(model=MODEL, temperature=0, **kwargs) as stream:
        events = list(stream)
        final = stream.get_final_response()
    return events, final


def assert_stream_consistent(events, final) -> None:
    """Sequence numbers, first and last events, and deltas that add up to the final items."""
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(set(numbers)), numbers
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed"
    assert all(event.response.id == final.id for event in events if hasattr(event, "response"))
    texts: dict[int, str] = {}
    for event in events:
        if event.type in ("response.output_text.delta", "response.reasoning_text.delta",
                          "response.function_call_arguments.delta"):
            assert event.item_id == final.output[event.output_index].id
            texts[event.output_index] = texts.get(event.output_index, "") + event.delta
    for index, item in enumerate(final.output):
        whole = item.arguments if item.type == "function_call" else item.content[0].text
        assert texts.get(index) == whole, (index, item)
    added = [e.item.id for e in events if e.type == "response.output_item.added"]
    done = [e.item.id for e in events if e.type == "response.output_item.done"]
    assert added == done == [item.id for item in final.output]


STREAM_CASES = {
    "addition": {"input": add_question(*ADDITION)},
    "capital": {"input": capital_question("Peru")},
    "tool_call": {"input": weather_question(WEATHER_CASES[0][0]), "tools": TOOLS},
}


@pytest.mark.parametrize("case", sorted(STREAM_CASES))
def test_stream_final_equals_create(client, case):
    kwargs = STREAM_CASES[case]
    response = create(client, **kwargs)
    events, final = stream_events(client, **kwargs)
    assert_stream_consistent(events, final)
    assert comparable(final) == comparable(response)
    assert final.output_text == response.output_text


def test_stream_after_tool_result_equals_create(client):
    city, temperature, condition = WEATHER_CASES[1]
    question = [{"role": "user", "content": weather_question(city)}]
    first = create(client, input=question, tools=TOOLS)
    call = function_call_of(first, city)
    follow_up = question + first.output + [{
        "type": "function_call_output", "call_id": call.call_id,
        "output": weather_result(temperature, condition)}]
    response = create(client, input=follow_up, tools=TOOLS)
    events, final = stream_events(client, input=follow_up, tools=TOOLS)
    assert_stream_consistent(events, final)
    assert final.output_text == weather_answer(city, temperature, condition)
    assert comparable(final) == comparable(response)


def test_stream_incomplete_equals_create(client):
    """A cut stream ends with response.incomplete (the helper has no final response for it)."""
    kwargs = {"input": add_question(*ADDITION), "max_output_tokens": 5}
    response = create(client, **kwargs)
    with client.responses.stream(model=MODEL, temperature=0, **kwargs) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete"
    incomplete = events[-1].response
    assert incomplete.incomplete_details.reason == "max_output_tokens"
    assert comparable(incomplete) == comparable(response)
