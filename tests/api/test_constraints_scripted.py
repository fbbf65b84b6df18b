"""Constraints on the scripted engine: schemas are checked exactly as for the real engine (a bad one
is a 400 in the surface's envelope, naming the parameter, and never reaches the engine), and a valid
constraint travels to the engine as Harmony routes, which the scripted engine ignores: it replays
its script unconstrained (issue 13's contract for the scripted engine), so a ``json_schema``
request gets the scripted text back. A forced call (required, named) checks every callable
tool's schema, strict or not: its arguments follow it.
"""

from __future__ import annotations

import pytest

from tests.conftest import MODEL
from tests.corpus import COMPLETIONS, WEATHER_TOOL

HI = [{"role": "user", "content": "hi"}]
SCRIPTED_ANSWER = "Hello! How can I help?"  # the final answer of COMPLETIONS["plain"]
GOOD = {"type": "object", "properties": {"sure": {"type": "boolean"}}, "required": ["sure"],
        "additionalProperties": False}


def nested(levels: int) -> dict:
    """An object schema whose properties nest ``levels`` objects deep (2 JSON levels each)."""
    schema: dict = {"type": "boolean"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def oversized(size: int) -> dict:
    """A valid object schema of more than ``size`` bytes of JSON."""
    properties = {f"p{i:05d}": {"type": "integer", "minimum": 0, "maximum": 9}
                  for i in range(size // 40 + 1)}
    return {"type": "object", "properties": properties}


# what each bad schema is, and words its 400 must say
BAD_SCHEMAS = {
    "unknown_type": ({"type": "object", "properties": {"a": {"type": "nonsense"}}}, "nonsense"),
    "bad_regex": ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(("}}},
                  "Regex"),
    "not_an_object": (["type", "object"], "schema"),
    "oversized": (oversized(64 * 1024), "--max-schema-bytes"),
    "too_deep": (nested(20), "--max-schema-depth"),
}


def chat_body(schema) -> dict:
    return {"model": MODEL, "messages": HI, "response_format": {
        "type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}}


def responses_body(schema) -> dict:
    return {"model": MODEL, "input": "hi", "text": {"format": {
        "type": "json_schema", "name": "out", "schema": schema, "strict": True}}}


def messages_body(schema) -> dict:
    return {"model": MODEL, "max_tokens": 100, "messages": HI, "tool_choice": {"type": "any"},
            "tools": [{"name": "pick", "description": "Pick.", "strict": True,
                       "input_schema": schema}]}


SURFACES = {  # path, body, the parameter an OpenAI envelope names (None: Anthropic's envelope)
    "chat": ("/v1/chat/completions", chat_body, "response_format.json_schema.schema"),
    "responses": ("/v1/responses", responses_body, "text.format.schema"),
    "messages": ("/v1/messages", messages_body, None),
}


def assert_bad_schema(response, param: str | None, word: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    if param is None:  # Anthropic's envelope
        assert body == {"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": body["error"]["message"]}}
        message = body["error"]["message"]
    else:
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert error["type"] == "invalid_request_error" and error["param"] == param, error
        message = error["message"]
    assert word in message, message
    assert ".cc:" not in message and "/project" not in message, message  # no C++ source paths


@pytest.mark.parametrize("surface", sorted(SURFACES))
@pytest.mark.parametrize("case", sorted(BAD_SCHEMAS))
def test_bad_schema_is_a_400_and_never_reaches_the_engine(serve, surface, case):
    server = serve(max_schema_depth=32)
    path, body, param = SURFACES[surface]
    schema, word = BAD_SCHEMAS[case]
    with server.http() as http:
        assert_bad_schema(http.post(path, json=body(schema)), param, word)
        assert server.engine.calls == []
        # and the server serves the next request
        assert http.post(path, json=body(GOOD)).status_code == 200
    assert len(server.engine.calls) == 1


def test_depth_and_size_limits_are_the_flags(serve):
    server = serve(max_schema_depth=4, max_schema_bytes=1024)
    with server.http() as http:
        for schema, word in ((nested(3), "--max-schema-depth"), (oversized(1024), "bytes")):
            response = http.post("/v1/chat/completions", json=chat_body(schema))
            assert_bad_schema(response, "response_format.json_schema.schema", word)
        assert http.post("/v1/chat/completions", json=chat_body(nested(1))).status_code == 200


def test_a_strict_tools_bad_parameters_name_the_tool(serve):
    server = serve()
    tool = {"type": "function", "function": {**WEATHER_TOOL["function"], "strict": True,
                                             "parameters": BAD_SCHEMAS["bad_regex"][0]}}
    response = server.http().post("/v1/chat/completions", json={
        "model": MODEL, "messages": HI, "tools": [WEATHER_TOOL, tool]})
    assert_bad_schema(response, "tools.1.function.parameters", "schema")
    assert server.engine.calls == []


@pytest.mark.parametrize("fmt", [
    {"type": "json_schema", "json_schema": {"name": "out", "schema": GOOD, "strict": True}},
    {"type": "json_object"},
], ids=["json_schema", "json_object"])
def test_valid_constraint_replays_the_script_unconstrained(serve, fmt):
    server = serve([COMPLETIONS["plain"]])
    response = server.client().chat.completions.create(model=MODEL, messages=HI,
                                                       response_format=fmt)
    choice = response.choices[0]
    assert choice.message.content == SCRIPTED_ANSWER and choice.finish_reason == "stop"
    # the engine was handed the constraint (Harmony routes), and replayed its script anyway
    routes = server.engine.calls[-1].options.constraint["routes"]
    assert any(route["schema"] for route in routes)


def test_required_call_replays_the_script_unconstrained(serve):
    server = serve([COMPLETIONS["plain"]])
    response = server.client().responses.create(
        model=MODEL, input="hi", tool_choice="required",
        tools=[{"type": "function", **WEATHER_TOOL["function"]}])
    assert response.output_text == SCRIPTED_ANSWER
    assert server.engine.calls[-1].options.constraint is not None


@pytest.mark.parametrize(("choice", "param"), [
    ("required", "tools.0.function.parameters"),
    ({"type": "function", "function": {"name": "get_weather"}}, "tools.0.function.parameters"),
])
def test_a_forced_calls_parameters_are_checked_though_not_strict(serve, choice, param):
    """A forced call's arguments follow the tool's schema even when the tool is not strict, so
    that schema must be usable; under ``auto`` it is not checked (the arguments stay free)."""
    server = serve()
    tool = {"type": "function", "function": {**WEATHER_TOOL["function"],
                                             "parameters": BAD_SCHEMAS["bad_regex"][0]}}
    with server.http() as http:
        body = {"model": MODEL, "messages": HI, "tools": [tool]}
        assert_bad_schema(http.post("/v1/chat/completions", json={**body, "tool_choice": choice}),
                          param, "Regex")
        assert server.engine.calls == []
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    assert server.engine.calls[-1].options.constraint is None
