"""End-to-end: constrained decoding on the trained gpt-oss-tiny (the real vLLM CPU engine).

Sampled at temperature 1.0 (Chat: n=4 with a seed; Responses and Messages: 4 separate requests),
where the tiny model, once it leaves what it was trained on, writes almost anything: only the
grammar can make the output valid. So every ``json_schema`` answer parses and validates while the
reasoning is still there (reasoning is never constrained), and the JSON is exactly the content;
``tool_choice`` required on a prompt the model answers in text yields a call whose arguments
validate; a named function is the one called; strict tools with parameter names the model never
saw validate against their declared schema. The same through Responses and Messages (anthropic
SDK, thinking shown). Bad schemas are 400s in each surface's envelope and the next request is
served; a constrained stream concatenates to valid JSON.

The schemas bound their values (enums, booleans, integers with a range, strings with maxLength):
a model this random otherwise writes a string or a number until ``max_tokens``, which no grammar
can stop. Every answer must end before ``max_tokens`` (never ``length``).
"""

from __future__ import annotations

import json
from typing import Literal

import httpx
import jsonschema
import pytest
from pydantic import BaseModel, Field

from tests.api.test_constraints_scripted import BAD_SCHEMAS
from training.train import WEATHER_PARAMETERS as TRAINED_WEATHER_PARAMETERS
from training.train import add_answer, weather_tool

pytestmark = pytest.mark.engine

MODEL = "gpt-oss-tiny"
N = 4
MAX_TOKENS = 400  # far more than any bounded answer or call needs, with its reasoning
SAMPLED = {"temperature": 1.0, "max_tokens": MAX_TOKENS}
THINKING = {"type": "enabled", "budget_tokens": 2048}  # Messages: thinking shown (low effort)

ADDITION = "What is 7 plus 5?"  # answered in text: a trained kind, no tool involved
CAPITAL = "What is the capital of Japan?"
WEATHER = "What is the weather in Madrid?"  # the model would call get_weather

SUM_SCHEMA = {"type": "object", "properties": {
    "answer": {"type": "integer", "minimum": 0, "maximum": 100},
    "sure": {"type": "boolean"},
    "method": {"type": "string", "enum": ["mental", "steps", "guess"]}},
    "required": ["answer", "sure", "method"]}
CITY_SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string", "maxLength": 16},
    "kind": {"enum": ["capital", "city", "town"]},
    "population_millions": {"type": "integer", "minimum": 0, "maximum": 40}},
    "required": ["city", "kind", "population_millions"], "additionalProperties": False}

# Function tools. get_weather is the one the model was trained to call (its parameter, bounded
# here: a forced call's arguments follow the schema of a tool that is not strict too, and an
# unbounded string is one this model may never close); the strict ones have parameter names the
# training never showed.
WEATHER_FUNCTION = weather_tool()["function"]
WEATHER_PARAMETERS = {"type": "object", "properties": {
    "city": {**TRAINED_WEATHER_PARAMETERS["properties"]["city"], "maxLength": 24}},
    "required": ["city"], "additionalProperties": False}
BUY_PARAMETERS = {"type": "object", "properties": {
    "ticker": {"type": "string", "enum": ["AAPL", "MSFT", "NVDA"]},
    "qty": {"type": "integer", "minimum": 1, "maximum": 500},
    "limit": {"type": "boolean"}},
    "required": ["ticker", "qty", "limit"], "additionalProperties": False}
ALARM_PARAMETERS = {"type": "object", "properties": {
    "hour": {"type": "integer", "minimum": 0, "maximum": 23},
    "minute": {"type": "integer", "minimum": 0, "maximum": 59},
    "label": {"type": "string", "maxLength": 10}},
    "required": ["hour", "minute", "label"], "additionalProperties": False}
FUNCTIONS = {
    "get_weather": (WEATHER_FUNCTION["description"], WEATHER_PARAMETERS, False),
    "buy_stock": ("Buy shares of a company.", BUY_PARAMETERS, True),
    "set_alarm": ("Set an alarm clock.", ALARM_PARAMETERS, True),
}


def chat_tool(name: str) -> dict:
    description, parameters, strict = FUNCTIONS[name]
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": parameters, "strict": strict}}


def responses_tool(name: str) -> dict:
    description, parameters, strict = FUNCTIONS[name]
    return {"type": "function", "name": name, "description": description,
            "parameters": parameters, "strict": strict}


def messages_tool(name: str) -> dict:
    description, parameters, strict = FUNCTIONS[name]
    return {"name": name, "description": description, "input_schema": parameters,
            "strict": strict}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def strict_schema(schema: dict) -> dict:
    """What a strict schema means: no properties beyond the declared ones."""
    return {**schema, "additionalProperties": False}


def assert_json_answer(content: str, schema: dict):
    """``content`` is exactly one JSON value (no fences, no text around it) valid for
    ``schema``; returns it."""
    assert content and content == content.strip(), repr(content)
    assert content[0] == "{" and content[-1] == "}", repr(content)
    value = json.loads(content)
    jsonschema.validate(value, schema)
    return value


def assert_arguments(name: str, arguments) -> None:
    value = json.loads(arguments) if isinstance(arguments, str) else arguments
    jsonschema.validate(value, FUNCTIONS[name][1])


def reasoning_content(message) -> str | None:
    return (message.model_extra or {}).get("reasoning_content")


@pytest.fixture(scope="module")
def http(trained_server):
    with httpx.Client(base_url=trained_server.base_url, timeout=120) as client:
        yield client


# --- Chat: response_format --------------------------------------------------------------------

@pytest.mark.parametrize(("question", "schema", "strict"), [
    (ADDITION, SUM_SCHEMA, True),
    (CAPITAL, CITY_SCHEMA, True),
    (ADDITION, strict_schema(SUM_SCHEMA), False),  # not strict: its own additionalProperties
    (CAPITAL, CITY_SCHEMA, False),
], ids=["sum-strict", "city-strict", "sum-not-strict", "city-not-strict"])
def test_chat_json_schema(client, question, schema, strict):
    response = client.chat.completions.create(
        model=MODEL, messages=user(question), n=N, seed=21, **SAMPLED,
        response_format={"type": "json_schema", "json_schema": {
            "name": "answer", "schema": schema, "strict": strict}})
    assert sorted(c.index for c in response.choices) == list(range(N))
    for choice in response.choices:
        assert choice.finish_reason == "stop", choice
        assert reasoning_content(choice.message), choice.message  # reasoning left free
        assert not choice.message.tool_calls
        # strict: no property beyond the declared ones, though the schema does not say so
        assert_json_answer(choice.message.content, strict_schema(schema) if strict else schema)


def test_chat_json_object(client):
    """Any JSON object. Nothing bounds its strings and numbers, and about one sample in ten of
    this model never closes them (the grammar allows an endless string); the seed is fixed
    (sampling is reproducible per seed) on samples that end, with room for long ones."""
    response = client.chat.completions.create(
        model=MODEL, messages=user(CAPITAL), n=N, seed=7, temperature=1.0, max_tokens=1500,
        response_format={"type": "json_object"})
    assert len(response.choices) == N
    for choice in response.choices:
        assert choice.finish_reason == "stop", choice
        assert reasoning_content(choice.message)
        assert isinstance(assert_json_answer(choice.message.content, {"type": "object"}), dict)


class Capital(BaseModel):
    country: Literal["France", "Japan", "Peru"]
    population_millions: int = Field(ge=0, le=50)
    is_coastal: bool


def test_chat_parse_with_a_pydantic_model(client):
    """openai-python's ``parse()`` sends the model as a strict json_schema and parses every
    choice back into it."""
    completion = client.chat.completions.parse(model=MODEL, messages=user(CAPITAL), n=N,
                                               seed=5, response_format=Capital, **SAMPLED)
    assert len(completion.choices) == N
    for choice in completion.choices:
        assert choice.finish_reason == "stop", choice
        assert isinstance(choice.message.parsed, Capital), choice.message
        assert choice.message.parsed == Capital.model_validate_json(choice.message.content)
        assert reasoning_content(choice.message)


def test_chat_constrained_stream(client):
    """Streamed, the content deltas of each choice concatenate to valid JSON."""
    contents: dict[int, str] = {}
    reasoning: dict[int, str] = {}
    finish: dict[int, str] = {}
    for chunk in client.chat.completions.create(
            model=MODEL, messages=user(ADDITION), n=N, seed=13, stream=True, **SAMPLED,
            response_format={"type": "json_schema", "json_schema": {
                "name": "sum", "schema": SUM_SCHEMA, "strict": True}}):
        for choice in chunk.choices:
            contents[choice.index] = contents.get(choice.index, "") + (choice.delta.content or "")
            reasoning[choice.index] = (reasoning.get(choice.index, "")
                                       + (reasoning_content(choice.delta) or ""))
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert sorted(contents) == list(range(N))
    for index, content in contents.items():
        assert finish[index] == "stop"
        assert reasoning[index]
        assert_json_answer(content, strict_schema(SUM_SCHEMA))


# --- Chat: tool_choice and strict tools --------------------------------------------------------

@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_chat_required_call_on_a_text_prompt(client, effort):
    """The model answers an addition in text; required, it calls get_weather (the only tool, not
    strict) with arguments valid for its schema, at every effort."""
    response = client.chat.completions.create(
        model=MODEL, messages=user(ADDITION), n=N, seed=3, reasoning_effort=effort, **SAMPLED,
        tools=[chat_tool("get_weather")], tool_choice="required")
    for choice in response.choices:
        assert choice.finish_reason == "tool_calls", choice
        assert reasoning_content(choice.message)
        [call] = choice.message.tool_calls  # (a preamble may come first, as content)
        assert call.function.name == "get_weather"
        assert_arguments("get_weather", call.function.arguments)


def test_chat_auto_answers_the_text_prompt(client):
    """The same prompt without a forced call is answered in text: the call above is the
    grammar's doing."""
    choice = client.chat.completions.create(model=MODEL, messages=user(ADDITION), temperature=0,
                                            tools=[chat_tool("get_weather")]).choices[0]
    assert choice.finish_reason == "stop" and choice.message.content == add_answer(7, 5)


@pytest.mark.parametrize(("question", "name"), [
    (WEATHER, "buy_stock"),  # the model would call get_weather
    (ADDITION, "get_weather"),  # the model would answer in text
    (ADDITION, "set_alarm"),
])
def test_chat_named_function_is_the_one_called(client, question, name):
    response = client.chat.completions.create(
        model=MODEL, messages=user(question), n=N, seed=9, **SAMPLED,
        tools=[chat_tool("get_weather"), chat_tool("buy_stock"), chat_tool("set_alarm")],
        tool_choice={"type": "function", "function": {"name": name}})
    for choice in response.choices:
        assert choice.finish_reason == "tool_calls", choice
        assert reasoning_content(choice.message)
        [call] = choice.message.tool_calls
        assert call.function.name == name
        assert_arguments(name, call.function.arguments)


@pytest.mark.parametrize("question", [ADDITION, WEATHER])
def test_chat_strict_tools_with_unseen_parameters(client, question):
    """Only strict tools the training never showed (ticker, qty, hour, ...), a call required: every
    call is one of them, its arguments valid for the declared schema."""
    response = client.chat.completions.create(
        model=MODEL, messages=user(question), n=N, seed=17, **SAMPLED,
        tools=[chat_tool("buy_stock"), chat_tool("set_alarm")], tool_choice="required")
    for choice in response.choices:
        assert choice.finish_reason == "tool_calls", choice
        [call] = choice.message.tool_calls
        assert call.function.name in ("buy_stock", "set_alarm")
        assert_arguments(call.function.name, call.function.arguments)


# --- Responses -----------------------------------------------------------------------------------

def responses_create(client, **kwargs):
    return client.responses.create(model=MODEL, temperature=1.0,
                                   max_output_tokens=MAX_TOKENS, **kwargs)


def assert_reasoned(response, last: str):
    """Completed; reasoning items with text (one or more: the model may reason on after a
    forbidden final answer), then a single item of type ``last``, which is returned; a call may
    have a preamble (a message) before it."""
    assert response.status == "completed", response
    assert response.incomplete_details is None
    *before, item = response.output
    assert item.type == last, response.output
    assert before[0].type == "reasoning", response.output
    for other in before:
        if other.type == "reasoning":
            assert other.content[0].text.strip(), other
        else:
            assert last == "function_call" and other.type == "message", response.output
    return item


@pytest.mark.parametrize(("question", "schema"), [(ADDITION, SUM_SCHEMA), (CAPITAL, CITY_SCHEMA)],
                         ids=["sum", "city"])
def test_responses_json_schema(client, question, schema):
    for _ in range(N):
        response = responses_create(client, input=question, text={"format": {
            "type": "json_schema", "name": "answer", "schema": schema, "strict": True}})
        assert_reasoned(response, "message")
        assert_json_answer(response.output_text, strict_schema(schema))


def function_call_of(response):
    return assert_reasoned(response, "function_call")


def test_responses_required_call_on_a_text_prompt(client):
    for _ in range(N):
        call = function_call_of(responses_create(client, input=ADDITION, tool_choice="required",
                                                 tools=[responses_tool("get_weather")]))
        assert call.name == "get_weather"
        assert_arguments("get_weather", call.arguments)


@pytest.mark.parametrize(("question", "name"), [(WEATHER, "buy_stock"), (ADDITION, "get_weather")])
def test_responses_named_function_is_the_one_called(client, question, name):
    tools = [responses_tool("get_weather"), responses_tool("buy_stock")]
    for _ in range(N):
        call = function_call_of(responses_create(client, input=question, tools=tools,
                                                 tool_choice={"type": "function", "name": name}))
        assert call.name == name
        assert_arguments(name, call.arguments)


def test_responses_strict_tools_with_unseen_parameters(client):
    tools = [responses_tool("buy_stock"), responses_tool("set_alarm")]
    for _ in range(N):
        call = function_call_of(responses_create(client, input=WEATHER, tools=tools,
                                                 tool_choice="required"))
        assert call.name in ("buy_stock", "set_alarm")
        assert_arguments(call.name, call.arguments)


# --- Messages ------------------------------------------------------------------------------------

def messages_create(client, **kwargs):
    # temperature in the body: the anthropic SDK (2.x) no longer has the argument
    return client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, thinking=THINKING,
                                  extra_body={"temperature": 1.0}, **kwargs)


def tool_use_of(message):
    """Thinking (one block or more: the model may reason on when it cannot answer), a text block
    or not (a preamble), then a single tool_use; stop_reason tool_use."""
    assert message.stop_reason == "tool_use", message
    *before, call = message.content
    assert call.type == "tool_use", message.content
    assert before[0].type == "thinking", message.content
    for block in before:
        assert block.type in ("thinking", "text"), message.content
        if block.type == "thinking":
            assert block.thinking.strip() and block.signature, block
    return call


@pytest.mark.parametrize("disable_parallel", [False, True])
def test_messages_any_on_a_text_prompt(anthropic_client, disable_parallel):
    choice = {"type": "any", "disable_parallel_tool_use": disable_parallel}
    for _ in range(N):
        call = tool_use_of(messages_create(anthropic_client, messages=user(ADDITION),
                                           tools=[messages_tool("get_weather")],
                                           tool_choice=choice))
        assert call.name == "get_weather"
        assert_arguments("get_weather", call.input)


@pytest.mark.parametrize(("question", "name"), [(WEATHER, "buy_stock"), (ADDITION, "get_weather")])
def test_messages_named_tool_is_the_one_called(anthropic_client, question, name):
    tools = [messages_tool("get_weather"), messages_tool("buy_stock")]
    for _ in range(N):
        call = tool_use_of(messages_create(anthropic_client, messages=user(question), tools=tools,
                                           tool_choice={"type": "tool", "name": name}))
        assert call.name == name
        assert_arguments(name, call.input)


def test_messages_strict_tools_with_unseen_parameters(anthropic_client):
    tools = [messages_tool("buy_stock"), messages_tool("set_alarm")]
    for _ in range(N):
        call = tool_use_of(messages_create(anthropic_client, messages=user(WEATHER), tools=tools,
                                           tool_choice={"type": "any"}))
        assert call.name in ("buy_stock", "set_alarm")
        assert_arguments(call.name, call.input)


# --- bad schemas -----------------------------------------------------------------------------

def chat_request(schema) -> tuple[str, dict]:
    return "/v1/chat/completions", {
        "model": MODEL, "messages": user(ADDITION), "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": schema, "strict": True}}}


def responses_request(schema) -> tuple[str, dict]:
    return "/v1/responses", {"model": MODEL, "input": ADDITION, "temperature": 0, "text": {
        "format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}}}


def messages_request(schema) -> tuple[str, dict]:
    return "/v1/messages", {
        "model": MODEL, "max_tokens": MAX_TOKENS, "messages": user(ADDITION), "temperature": 0,
        "tools": [{"name": "pick", "description": "Pick.", "strict": True,
                   "input_schema": schema}], "tool_choice": {"type": "any"}}


BAD_REQUESTS = {  # the request, the parameter the OpenAI envelope names (None: Anthropic's)
    "chat": (chat_request, "response_format.json_schema.schema"),
    "responses": (responses_request, "text.format.schema"),
    "messages": (messages_request, None),
}


def assert_error_envelope(response, param: str | None, word: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    if param is None:
        assert body["type"] == "error" and set(body) == {"type", "error"}, body
        assert body["error"]["type"] == "invalid_request_error", body
    else:
        assert set(body) == {"error"}, body
        assert body["error"]["type"] == "invalid_request_error", body
        assert body["error"]["param"] == param, body
    assert word in body["error"]["message"], body


@pytest.mark.parametrize("surface", sorted(BAD_REQUESTS))
@pytest.mark.parametrize("case", sorted(BAD_SCHEMAS))
def test_bad_schema_is_a_400_and_the_next_request_is_served(http, surface, case):
    """Unknown type, a regex that does not compile, not an object, over --max-schema-bytes
    (64 KiB), deeper than --max-schema-depth (32): a 400 in the surface's envelope; then the same
    request with a valid schema is answered, its JSON valid."""
    build, param = BAD_REQUESTS[surface]
    bad, word = BAD_SCHEMAS[case]
    path, body = build(bad)
    assert_error_envelope(http.post(path, json=body), param, word)
    path, body = build(SUM_SCHEMA)
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    body = response.json()
    if surface == "chat":
        assert_json_answer(body["choices"][0]["message"]["content"], strict_schema(SUM_SCHEMA))
    elif surface == "responses":
        assert body["status"] == "completed"
        assert_json_answer(body["output"][-1]["content"][0]["text"], strict_schema(SUM_SCHEMA))
    else:
        assert body["stop_reason"] == "tool_use"
        jsonschema.validate(body["content"][-1]["input"], strict_schema(SUM_SCHEMA))

