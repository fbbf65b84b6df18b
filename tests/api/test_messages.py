"""Anthropic Messages through the official anthropic SDK over the scripted engine: the stream
helper's final message equals the non-stream message at chunk sizes 1, 2, 3 and 7; thinking,
tool use, stop sequences, count_tokens, a coding-agent-shaped request, errors in Anthropic's
envelope."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.conftest import MODEL
from tests.corpus import COMPLETIONS

TOOL = {"name": "get_weather", "description": "Current weather for a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}
THINK = {"type": "enabled", "budget_tokens": 2048}
HI = [{"role": "user", "content": "hi"}]


def client_of(server, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=server.key or "unused",
                               max_retries=0, **kwargs)


def normalised(message) -> dict:
    body = message.model_dump(mode="json", exclude_none=True)
    body["id"] = "msg"
    for block in body["content"]:
        if block["type"] == "tool_use":
            block["id"] = "toolu"
    return body


def _both(client, **kwargs):
    created = client.messages.create(model=MODEL, **kwargs)
    with client.messages.stream(model=MODEL, **kwargs) as stream:
        events = list(stream)
        final = stream.get_final_message()
    return created, final, events


@pytest.mark.parametrize("name", sorted(COMPLETIONS))
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7], ids=lambda k: f"chunk{k}")
@pytest.mark.parametrize("thinking", [THINK, None], ids=["thinking", "hidden"])
def test_stream_final_equals_create(serve, name, chunk_size, thinking):
    server = serve([COMPLETIONS[name]], chunk_size=chunk_size)
    extra = {"thinking": thinking} if thinking else {}
    created, final, events = _both(client_of(server), max_tokens=1000, messages=HI,
                                   tools=[TOOL], **extra)
    assert normalised(final) == normalised(created)
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    kinds = {block.type for block in created.content}
    reasoned = "<|channel|>analysis<|message|>" in COMPLETIONS[name]
    assert ("thinking" in kinds) == (thinking is not None and reasoned)


def test_blocks_in_order_with_signatures_and_usage(serve, harmony):
    def harmony_tokens(text: str) -> list[int]:
        return harmony.encode_completion(text)

    server = serve([COMPLETIONS["preamble_then_tool"], COMPLETIONS["tool_in_channel"]])
    client = client_of(server)
    message = client.messages.create(model=MODEL, max_tokens=500, messages=HI, tools=[TOOL])
    text, call = message.content
    assert (text.type, text.text) == ("text", "Let me check the weather.")
    assert call.type == "tool_use" and call.id.startswith("toolu_")
    assert (call.name, call.input) == ("get_weather", {"city": "Lima"})
    assert message.stop_reason == "tool_use" and message.stop_sequence is None
    assert message.usage.input_tokens == len(server.engine.calls[-1].prompt_token_ids)
    message = client.messages.create(model=MODEL, max_tokens=500, messages=HI, tools=[TOOL],
                                     thinking=THINK)
    thinking, call = message.content
    assert (thinking.type, thinking.thinking) == ("thinking", "Need weather.")
    assert thinking.signature
    tokens = len(harmony_tokens(COMPLETIONS["tool_in_channel"]))
    assert message.usage.output_tokens == tokens


@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (4095, "low"), (4096, "medium"),
                                                (16383, "medium"), (16384, "high"),
                                                (31999, "high")])
def test_thinking_budget_picks_the_effort(serve, harmony, budget, effort):
    server = serve()
    client_of(server).messages.create(model=MODEL, max_tokens=50, messages=HI,
                                      thinking={"type": "enabled", "budget_tokens": budget})
    prompt = harmony.decode_text(server.engine.calls[-1].prompt_token_ids)
    assert f"Reasoning: {effort}" in prompt


def test_max_tokens_and_stop_sequences(serve):
    server = serve([COMPLETIONS["long"]])
    client = client_of(server)
    created, final, _ = _both(client, max_tokens=40, messages=HI, thinking=THINK)
    assert created.stop_reason == "max_tokens" and created.usage.output_tokens == 40
    assert normalised(final) == normalised(created)
    server = serve([COMPLETIONS["plain"]])
    created, final, _ = _both(client_of(server), max_tokens=200, messages=HI,
                              stop_sequences=["How", "zzz"])
    assert created.stop_reason == "stop_sequence" and created.stop_sequence == "How"
    assert created.content[-1].text == "Hello! "
    assert normalised(final) == normalised(created)


def test_count_tokens_equals_the_create_usage(serve):
    server = serve([COMPLETIONS["plain"]])
    client = client_of(server)
    request = {"messages": CODING_AGENT_MESSAGES, "system": CODING_AGENT_SYSTEM,
               "tools": CODING_AGENT_TOOLS, "thinking": THINK}
    counted = client.messages.count_tokens(model=MODEL, **request)
    created = client.messages.create(model=MODEL, max_tokens=100, **request)
    assert counted.input_tokens == created.usage.input_tokens > 400


CODING_AGENT_SYSTEM = [
    {"type": "text", "text": "You are a coding agent. Use the tools to read and edit files.",
     "cache_control": {"type": "ephemeral"}},
    {"type": "text", "text": "Working directory: /repo. Platform: linux."}]
CODING_AGENT_TOOLS = [
    {"name": name, "description": f"The {name} tool.",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"},
                                                       "content": {"type": "string"}},
                      "required": ["path"]},
     **({"cache_control": {"type": "ephemeral"}} if name == "Write" else {})}
    for name in ("Read", "Write", "Edit", "Glob", "Grep", "Bash", "LS", "TodoWrite")]
CODING_AGENT_MESSAGES = [
    {"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>Keep answers short.</system-reminder>"},
        {"type": "text", "text": "Fix the failing test in tests/test_app.py",
         "cache_control": {"type": "ephemeral"}}]},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "I should read the test first.",
         "signature": "c2lnbmF0dXJlLW9mLWFub3RoZXItc2VydmVy"},
        {"type": "text", "text": "Let me look at the test."},
        {"type": "tool_use", "id": "toolu_01", "name": "Read",
         "input": {"path": "tests/test_app.py"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01",
         "content": [{"type": "text", "text": "def test_add():\n    assert add(1, 2) == 4"}]}]},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "The expected value is wrong.", "signature": "eA=="},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "tool_use", "id": "toolu_02", "name": "Edit",
         "input": {"path": "tests/test_app.py", "content": "assert add(1, 2) == 3"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": True,
         "content": "permission denied", "cache_control": {"type": "ephemeral"}}]},
]


def test_coding_agent_shaped_request_streams(serve, harmony):
    server = serve([COMPLETIONS["preamble_then_tool"]], chunk_size=3)
    client = client_of(server, default_headers={
        "anthropic-beta": "interleaved-thinking-2025-05-14"})
    with client.messages.stream(model=MODEL, max_tokens=4096, system=CODING_AGENT_SYSTEM,
                                tools=CODING_AGENT_TOOLS, messages=CODING_AGENT_MESSAGES,
                                thinking=THINK, metadata={"user_id": "session-1"},
                                extra_body={"temperature": 1, "top_k": 40}) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[-1].name == "get_weather"
    prompt = harmony.decode_text(server.engine.calls[-1].prompt_token_ids)
    assert "You are a coding agent." in prompt and "Working directory: /repo." in prompt
    assert "type Write = " in prompt and "type TodoWrite = " in prompt
    # the open tool loop keeps its reasoning; calls, preamble and results in OpenAI's order
    assert "I should read the test first." in prompt and "The expected value is wrong." in prompt
    assert ("<|start|>assistant<|channel|>commentary<|message|>Let me look at the test.<|end|>"
            in prompt)
    assert ("<|start|>assistant to=functions.Read<|channel|>commentary <|constrain|>json"
            '<|message|>{"path": "tests/test_app.py"}<|call|>') in prompt
    assert ("<|start|>functions.Edit to=assistant<|channel|>commentary<|message|>"
            "Error: permission denied<|end|>") in prompt
    assert "<system-reminder>Keep answers short.</system-reminder>\nFix the failing" in prompt
    assert server.engine.calls[-1].options.top_k == 40


@pytest.mark.parametrize(("change", "kind"), [
    ({"max_tokens": None}, "invalid_request_error"),
    ({"model": "nope"}, "not_found_error"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "invalid_request_error"),
    ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "invalid_request_error"),
    ({"tool_choice": {"type": "tool", "name": "nope"}}, "invalid_request_error"),
    ({"tool_choice": {"type": "any"}, "tools": None}, "invalid_request_error"),
    ({"tools": [{**TOOL, "strict": True, "input_schema": {"type": "nonsense"}}]},
     "invalid_request_error"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "AA=="}}]}]}, "invalid_request_error"),
    ({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}]}]},
     "invalid_request_error"),
    ({"messages": []}, "invalid_request_error"),
    ({"temperature": 1.5}, "invalid_request_error"),
    ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "invalid_request_error"),
])
def test_errors_in_anthropic_envelope(serve, change, kind):
    server = serve()
    body = {"model": MODEL, "max_tokens": 10, "messages": HI, "tools": [TOOL], **change}
    body = {k: v for k, v in body.items() if v is not None}
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        response = server.http().post(path, json=body)
        if path.endswith("count_tokens") and "max_tokens" in change or "temperature" in change \
                or "stop_sequences" in change:
            continue  # fields count_tokens does not take
        assert 400 <= response.status_code < 500, response.text
        assert response.json() == {"type": "error", "error": {
            "type": kind, "message": response.json()["error"]["message"]}}
        assert response.json()["error"]["message"]
    assert server.engine.calls == []


def test_malformed_json_and_sdk_exceptions(serve):
    server = serve()
    response = httpx.post(server.url + "/v1/messages", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError) as raised:
        client_of(server).messages.create(model="nope", max_tokens=5, messages=HI)
    assert raised.value.body["error"]["type"] == "not_found_error"


def test_loading_and_overload_are_overloaded_errors(serve):
    import threading

    loaded = threading.Event()
    server = serve(loaded=loaded)
    with pytest.raises(anthropic.APIStatusError) as raised:
        client_of(server).messages.create(model=MODEL, max_tokens=5, messages=HI)
    assert raised.value.status_code == 503
    assert raised.value.body["error"]["type"] == "overloaded_error"
    loaded.set()


def test_auth_with_x_api_key_or_bearer_and_edge_errors_in_anthropic_envelope(serve):
    server = serve(api_key=["sk-a"], max_request_bytes=4096)
    assert client_of(server).messages.create(model=MODEL, max_tokens=5, messages=HI).usage
    bearer = anthropic.Anthropic(base_url=server.url, auth_token="sk-a", max_retries=0)
    assert bearer.messages.count_tokens(model=MODEL, messages=HI).input_tokens > 0
    for key in ("wrong", None):
        headers = {"x-api-key": key} if key else {}
        response = httpx.post(server.url + "/v1/messages", headers=headers,
                              json={"model": MODEL, "max_tokens": 5, "messages": HI})
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
        assert response.headers["request-id"] == response.headers["x-request-id"]
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0) \
            .messages.create(model=MODEL, max_tokens=5, messages=HI)
    big = httpx.post(server.url + "/v1/messages", headers={"x-api-key": "sk-a"},
                     json={"model": MODEL, "max_tokens": 5,
                           "messages": [{"role": "user", "content": "x" * 5000}]})
    assert big.status_code == 413 and big.json()["error"]["type"] == "request_too_large"
    # OpenAI's routes keep OpenAI's envelope, and take the same key either way
    openai_route = httpx.post(server.url + "/v1/chat/completions", headers={"x-api-key": "no"},
                              json={"model": MODEL, "messages": HI})
    assert openai_route.status_code == 401 and openai_route.json()["error"]["code"]


def test_overload_is_an_overloaded_error(serve):
    server = serve([COMPLETIONS["long"]], token_delay=0.05, max_concurrent_requests=1,
                   max_queued_requests=0)
    held = server.open_request({"model": MODEL, "max_tokens": 500, "messages": HI,
                                "stream": True}, path="/v1/messages")
    try:
        from tests.conftest import wait_for
        wait_for(lambda: server.engine.calls, what="the first request to reach the engine")
        with pytest.raises(anthropic.APIStatusError) as raised:
            client_of(server).messages.create(model=MODEL, max_tokens=5, messages=HI)
        assert raised.value.status_code == 503
        assert raised.value.body["error"]["type"] == "overloaded_error"
    finally:
        held.close()
