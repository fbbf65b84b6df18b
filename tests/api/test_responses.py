"""The Responses API through the official openai SDK over the scripted engine.

Every scripted completion, at engine chunk sizes 1, 2, 3 and 7: the ``responses.stream()``
helper accepts the stream and its final response equals the non-stream response field by field
(ids and timestamps aside); the stored response, input items, errors and the conversation that
``previous_response_id`` continues.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from server.engine.protocol import EngineDeadError, TokenDelta
from tests.conftest import MODEL
from tests.corpus import COMPLETIONS, WEATHER_TOOL

TOOLS = [{"type": "function", **WEATHER_TOOL["function"]}]
CALL = COMPLETIONS["tool_in_channel"]


def normalised(response) -> dict:
    """A response with its random parts (ids, times) replaced, for comparing two runs."""
    body = response if isinstance(response, dict) else response.model_dump(mode="json")
    body = json.loads(json.dumps(body))
    body["id"], body["created_at"] = "resp", 0
    for item in body["output"]:
        item["id"] = "item"
        if "call_id" in item:
            item["call_id"] = "call"
        item.pop("parsed_arguments", None)  # the stream helper's parsed fields: client-side
        for part in item.get("content") or ():
            part.pop("parsed", None)
    return body


def _create_both(client, **kwargs):
    created = client.responses.create(model=MODEL, **kwargs)
    with client.responses.stream(model=MODEL, **kwargs) as stream:
        events = list(stream)
        final = stream.get_final_response()
    return created, final, events


@pytest.mark.parametrize("name", sorted(set(COMPLETIONS) - {"malformed", "control_in_body"}))
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7], ids=lambda k: f"chunk{k}")
def test_stream_final_equals_create(serve, name, chunk_size):
    server = serve([COMPLETIONS[name]], chunk_size=chunk_size)
    created, final, events = _create_both(server.client(), input="hi", tools=TOOLS)
    assert normalised(final) == normalised(created)
    assert created.status == "completed" and created.usage.output_tokens > 0
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed"


@pytest.mark.parametrize("name", ["malformed", "control_in_body"])
def test_malformed_output_stands_as_parsed(serve, name):
    server = serve([COMPLETIONS[name]], chunk_size=2)
    created, final, _ = _create_both(server.client(), input="hi")
    assert normalised(final) == normalised(created)
    assert created.output_text == "Good start" and created.status == "completed"


def test_items_reasoning_message_and_output_text(serve):
    server = serve([COMPLETIONS["plain"]])
    response = server.client().responses.create(model=MODEL, input="hi")
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.summary == []
    assert [(c.type, c.text) for c in reasoning.content] == [
        ("reasoning_text", "User says hi. Reply briefly.")]
    assert message.type == "message" and message.role == "assistant"
    assert [(c.type, c.text, c.annotations) for c in message.content] == [
        ("output_text", "Hello! How can I help?", [])]
    assert response.output_text == "Hello! How can I help?"
    usage = response.usage
    assert usage.input_tokens == len(server.engine.calls[-1].prompt_token_ids)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert 0 < usage.output_tokens_details.reasoning_tokens < usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0


def test_preamble_is_its_own_message_then_the_call(serve):
    server = serve([COMPLETIONS["preamble_then_tool"]])
    response = server.client().responses.create(model=MODEL, input="weather?", tools=TOOLS)
    message, call = response.output
    assert message.type == "message" and response.output_text == "Let me check the weather."
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Lima"} and call.call_id.startswith("call_")
    assert call.status == "completed"


def test_max_output_tokens_ends_incomplete(serve):
    server = serve([COMPLETIONS["long"]])
    client = server.client()
    created = client.responses.create(model=MODEL, input="hi", max_output_tokens=20)
    assert created.status == "incomplete"
    assert created.incomplete_details.reason == "max_output_tokens"
    assert created.output[-1].status == "incomplete" and created.usage.output_tokens == 20
    events = list(client.responses.create(model=MODEL, input="hi", max_output_tokens=20,
                                          stream=True))
    assert events[-1].type == "response.incomplete"
    assert normalised(events[-1].response) == normalised(created)


def test_engine_failure_mid_stream_is_a_failed_response(serve):
    server = serve([COMPLETIONS["long"]])
    engine = server.app.state.pipeline.engine
    scripted = engine.generate

    async def dies_after_a_few_tokens(request):
        steps = scripted(request)
        for _ in range(12):
            yield await anext(steps)
        await steps.aclose()
        raise EngineDeadError("the engine died")
        yield TokenDelta([])  # pragma: no cover - makes this an async generator

    engine.generate = dies_after_a_few_tokens
    client = server.client()
    events = list(client.responses.create(model=MODEL, input="hi", stream=True))
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error.code == "server_unavailable"
    assert failed.response.output and failed.response.output[0].status == "incomplete"
    created = client.responses.create(model=MODEL, input="hi")
    assert created.status == "failed" and created.error.message
    assert client.responses.retrieve(created.id).status == "failed"


def test_retrieve_delete_and_input_items(serve):
    server = serve([COMPLETIONS["plain"]])
    client = server.client()
    created = client.responses.create(model=MODEL, instructions="Be brief.", input=[
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}])
    assert normalised(client.responses.retrieve(created.id)) == normalised(created)
    items = client.responses.input_items.list(created.id)
    assert [i.role for i in items.data] == ["user", "developer"]  # newest first by default
    assert [i.role for i in client.responses.input_items.list(created.id, order="asc").data] \
        == ["developer", "user"]
    first = client.responses.input_items.list(created.id, order="asc", limit=1)
    assert first.has_more and len(first.data) == 1
    after = client.responses.input_items.list(created.id, order="asc", after=first.data[0].id)
    assert [i.role for i in after.data] == ["user"] and not after.has_more
    client.responses.delete(created.id)
    for call in (lambda: client.responses.retrieve(created.id),
                 lambda: client.responses.delete(created.id),
                 lambda: client.responses.input_items.list(created.id)):
        with pytest.raises(openai.NotFoundError):
            call()


def test_store_false_leaves_nothing(serve):
    server = serve([COMPLETIONS["plain"]])
    client = server.client()
    response = client.responses.create(model=MODEL, input="hi", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    assert len(server.app.state.store) == 0


def _prompt(server, harmony) -> str:
    return harmony.decode_text(server.engine.calls[-1].prompt_token_ids)


def test_tool_loop_by_items_and_by_previous_response_id(serve, harmony):
    server = serve([CALL, COMPLETIONS["final_only"]])
    client = server.client()
    first = client.responses.create(model=MODEL, input="Weather in Paris?", tools=TOOLS,
                                    instructions="Use tools.")
    call = first.output[-1]
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "18C"}
    by_items = client.responses.create(
        model=MODEL, tools=TOOLS, input=[{"role": "user", "content": "Weather in Paris?"},
                                         *[i.model_dump(exclude_none=True) for i in first.output],
                                         result])
    prompt = _prompt(server, harmony)
    assert by_items.output_text == "Just the answer."
    chained = client.responses.create(model=MODEL, tools=TOOLS, input=[result],
                                      previous_response_id=first.id)
    assert chained.previous_response_id == first.id
    assert _prompt(server, harmony) == prompt  # the same conversation, rendered the same way
    assert ("<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>18C"
            in prompt)
    assert "Need weather." in prompt  # reasoning inside the open tool loop is kept
    assert "Use tools." not in prompt  # instructions are not carried over (as OpenAI)


def test_reasoning_dropped_after_a_final_answer(serve, harmony):
    server = serve([COMPLETIONS["plain"]])
    client = server.client()
    first = client.responses.create(model=MODEL, input="hi")
    client.responses.create(model=MODEL, input="again", previous_response_id=first.id)
    prompt = _prompt(server, harmony)
    assert "User says hi." not in prompt
    assert "<|channel|>final<|message|>Hello! How can I help?<|end|>" in prompt


def test_effort_and_echoed_fields(serve, harmony):
    server = serve([COMPLETIONS["plain"]])
    response = server.client().responses.create(
        model=MODEL, input="hi", reasoning={"effort": "high"}, temperature=0.5,
        metadata={"k": "v"}, user="u1", parallel_tool_calls=False)
    assert "Reasoning: high" in _prompt(server, harmony)
    assert response.reasoning.effort == "high" and response.temperature == 0.5
    assert response.metadata == {"k": "v"} and response.user == "u1"
    assert response.parallel_tool_calls is False


@pytest.mark.parametrize(("change", "param"), [
    ({"tools": [{"type": "web_search"}]}, "tools.0.type"),
    ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools.0.type"),
    ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools.0.name"),
    ({"background": True}, "background"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "nonsense"}}}},
     "text.format.schema"),
    ({"tool_choice": {"type": "function", "name": "nope"}, "tools": TOOLS}, "tool_choice.name"),
    ({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}}, "tool_choice.type"),
    ({"tools": [{**TOOLS[0], "strict": True, "parameters": {"type": "object", "properties": {
        "a": {"type": "string", "pattern": "(("}}}}]}, "tools.0.parameters"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"include": ["message.output_text.nonsense"]}, "include.0"),
    ({"top_logprobs": 21, "include": ["message.output_text.logprobs"]}, "top_logprobs"),
    ({"input": [{"type": "image_generation_call", "id": "x"}]}, "input.0.type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]},
     "input.0.content.0.type"),
    ({"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
     "input.0.call_id"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input.0.role"),
    ({"previous_response_id": "resp_unknown"}, "previous_response_id"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"model": "nope"}, "model"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_bad_requests_are_4xx_envelopes(serve, change, param, stream):
    server = serve()
    body = {"model": MODEL, "input": "hi", "stream": stream, **change}
    response = server.http().post("/v1/responses", json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["param"] == param and isinstance(error["code"], str), error
    assert server.engine.calls == []


def test_stream_frames_name_their_events(serve):
    server = serve([CALL], chunk_size=3)
    with server.http() as http, http.stream("POST", "/v1/responses", json={
            "model": MODEL, "input": "hi", "tools": TOOLS, "stream": True}) as response:
        assert response.status_code == 200
        text = "".join(response.iter_text())
    frames = [f for f in text.split("\n\n") if f]
    for frame in frames:
        event, data = frame.split("\n")
        assert event.removeprefix("event: ") == json.loads(data.removeprefix("data: "))["type"]
    assert "[DONE]" not in text


def test_unknown_route_variants_still_need_the_key(serve):
    server = serve(api_key=["sk-a"])
    for path in ("/v1/responses/x", "/v1/responses/x/input_items"):
        assert httpx.get(server.url + path).status_code == 401
