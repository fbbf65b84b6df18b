"""Every error in the one OpenAI envelope, with the status that picks the SDK's exception."""

from __future__ import annotations

import json
import threading

import httpx
import openai
import pytest

from tests.conftest import MODEL, wait_for

USER = [{"role": "user", "content": "hi"}]


def assert_envelope(response: httpx.Response, status: int, code: str, param=None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    assert error["param"] == param
    assert response.headers["x-request-id"]
    return error


def test_malformed_json(serve):
    server = serve()
    response = httpx.post(server.url + "/v1/chat/completions", content=b'{"model": ',
                          headers={"content-type": "application/json"})
    assert_envelope(response, 400, "invalid_json")


@pytest.mark.parametrize("body,param", [
    ({"model": MODEL, "messages": "hi"}, "messages"),
    ({"model": MODEL, "messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
    ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0"),
    ({"model": MODEL, "messages": USER, "temperature": "hot"}, "temperature"),
    ({"model": MODEL, "messages": USER, "temperature": 3}, "temperature"),
    ({"model": MODEL, "messages": USER, "max_tokens": 0}, "max_tokens"),
    ({"model": MODEL, "messages": []}, "messages"),
    ({"messages": USER}, "model"),
])
def test_wrong_types_name_the_param(serve, body, param):
    server = serve()
    response = httpx.post(server.url + "/v1/chat/completions", json=body)
    error = assert_envelope(response, 400, "invalid_request_error", param)
    assert error["type"] == "invalid_request_error"


def test_sdk_raises_bad_request_for_wrong_types(serve):
    client = serve().client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=USER, top_p=5)
    assert info.value.code == "invalid_request_error" and info.value.param == "top_p"


def test_unknown_model(serve):
    client = serve().client()
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-5", messages=USER)
    assert info.value.code == "model_not_found" and info.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-5")
    assert client.models.retrieve(MODEL).id == MODEL


def test_missing_and_wrong_key(serve):
    server = serve(api_key=["sk-right"])
    for key in ("sk-wrong", "sk-right-but-longer", "sk-righ"):
        with pytest.raises(openai.AuthenticationError) as info:
            openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0) \
                .chat.completions.create(model=MODEL, messages=USER)
        assert info.value.code == "invalid_api_key"
    response = httpx.get(server.url + "/v1/models")
    assert_envelope(response, 401, "invalid_api_key")
    assert server.client().chat.completions.create(model=MODEL, messages=USER).choices


@pytest.mark.parametrize("stream", [False, True])
def test_oversized_n(serve, stream):
    server = serve(max_n=8)
    with pytest.raises(openai.BadRequestError) as info:
        server.client().chat.completions.create(model=MODEL, messages=USER, n=9, stream=stream)
    assert info.value.param == "n" and info.value.code == "invalid_request_error"
    assert server.engine.calls == []


def test_unknown_route_and_method(serve):
    server = serve()
    assert_envelope(httpx.get(server.url + "/v1/nothing"), 404, "not_found")
    assert_envelope(httpx.get(server.url + "/v1/chat/completions"), 405, "method_not_allowed")


def test_body_too_large(serve):
    server = serve(max_request_bytes=2048)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 4096}]}
    assert_envelope(httpx.post(server.url + "/v1/chat/completions", json=body), 413,
                    "request_too_large")

    def chunked():  # no Content-Length: counted as it arrives
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        yield b"x" * 4096
        yield b'"}]}'

    response = httpx.post(server.url + "/v1/chat/completions", content=chunked(),
                          headers={"content-type": "application/json"})
    assert_envelope(response, 413, "request_too_large")


def test_context_length_exceeded(serve):
    server = serve(max_model_len=64)
    with pytest.raises(openai.BadRequestError) as info:
        server.client().chat.completions.create(model=MODEL, messages=USER)
    assert info.value.code == "context_length_exceeded"
    assert server.engine.calls == []


def test_request_id_is_echoed_or_made(serve):
    server = serve()
    assert httpx.get(server.url + "/health", headers={"x-request-id": "abc-123"}) \
        .headers["x-request-id"] == "abc-123"
    made = httpx.get(server.url + "/health", headers={"x-request-id": "bad id; drop table"})
    assert made.headers["x-request-id"] != "bad id; drop table" and len(made.headers["x-request-id"]) > 8


def test_error_after_200_is_one_frame_then_done(serve, monkeypatch):
    server = serve()

    async def dying(request):
        from server.engine.protocol import EngineDeadError, TokenDelta
        yield TokenDelta(server.app.state.harmony.encode_completion("<|channel|>final<|message|>Hi"))
        raise EngineDeadError("boom")

    monkeypatch.setattr(server.engine, "generate", dying)
    body = {"model": MODEL, "messages": USER, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        frames = [line for line in response.iter_lines() if line]
    assert frames[-1] == "data: [DONE]"
    assert '"error"' in frames[-2] and '"server_unavailable"' in frames[-2]
    assert all('"error"' not in f for f in frames[:-2])


@pytest.mark.parametrize("path,body,param", [
    ("/v1/chat/completions",
     {"model": MODEL, "messages": [{"role": "user", "content": "\ud800x"}]}, "messages.0.content"),
    ("/v1/chat/completions",
     {"model": MODEL, "messages": USER, "stream": True, "tools": [{"type": "function", "function": {
         "name": "f", "description": "x\udc00y"}}]}, "tools.0.function.description"),
    ("/tokenize", {"messages": [{"role": "system", "content": "\udfff"}]}, "messages.0.content"),
])
def test_lone_surrogate_is_a_400_naming_the_field(serve, path, body, param):
    server = serve()
    # json.dumps writes a lone surrogate as the escape "\ud800": valid JSON, invalid Unicode
    with server.http() as http:
        response = http.post(path, content=json.dumps(body),
                             headers={"content-type": "application/json"})
        assert_envelope(response, 400, "invalid_request_error", param)
        assert "surrogate" in response.json()["error"]["message"]
        assert http.get("/v1/models").status_code == 200  # the connection is still good
    assert server.engine.calls == []


def test_surrogate_pairs_and_escaped_backslashes_are_fine(serve):
    server = serve()
    # ASCII-only encoders write emoji as escaped surrogate pairs; "\\ud800" is plain text
    text = "smile \U0001F600 and a literal \\ud800"
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": text}]})
    assert "\\ud83d\\ude00" in body
    response = httpx.post(server.url + "/v1/chat/completions", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    tokens = httpx.post(server.url + "/tokenize", content=body.replace(f'"model": "{MODEL}", ', ""),
                        headers={"content-type": "application/json"}).json()
    assert text in tokens["prompt"]


def test_unexpected_error_is_a_500_envelope_and_the_connection_survives(serve, monkeypatch):
    server = serve()
    pipeline = server.app.state.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    with server.http() as http:
        with monkeypatch.context() as patch:
            patch.setattr(pipeline, "prepare", broken)
            response = http.post("/v1/chat/completions", json={"model": MODEL, "messages": USER})
        error = assert_envelope(response, 500, "server_error")
        assert "a bug" not in error["message"]  # internals stay in the log
        assert http.post("/v1/chat/completions",
                         json={"model": MODEL, "messages": USER}).status_code == 200


def test_integer_beyond_64_bits_in_a_tool_schema(serve):
    server = serve()
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer", "maximum": 2**70}}}}}]
    body = {"model": MODEL, "messages": USER, "tools": tools}
    assert httpx.post(server.url + "/v1/chat/completions", json=body).status_code == 200
    response = httpx.post(server.url + "/tokenize", json=body)
    assert response.status_code == 200 and "a?: number" in response.json()["prompt"]


def test_while_loading_requests_get_503_not_a_context_error(serve):
    loaded = threading.Event()
    server = serve(loaded=loaded)
    chat = {"model": MODEL, "messages": USER}
    for path, body in (("/v1/chat/completions", chat),
                       ("/v1/chat/completions", {**chat, "stream": True}),
                       ("/tokenize", {"messages": USER})):
        response = httpx.post(server.url + path, json=body)
        assert_envelope(response, 503, "server_unavailable")
        assert response.headers["retry-after"]
    assert httpx.get(server.url + "/ready").json() == {"status": "loading"}
    models = httpx.get(server.url + "/v1/models").json()["data"]
    assert [(m["id"], m["max_model_len"]) for m in models] == [(MODEL, None)]  # not yet known
    loaded.set()
    wait_for(lambda: httpx.get(server.url + "/ready").status_code == 200, what="ready")
    assert httpx.post(server.url + "/v1/chat/completions", json=chat).status_code == 200
    assert server.engine.calls and len(server.engine.calls) == 1


def test_tokenize_checks_like_chat(serve):
    server = serve(max_messages=2)
    tools = [{"type": "function", "function": {"name": "f", "description": "d"}}]
    response = httpx.post(server.url + "/tokenize", json={"model": "gpt-5", "messages": USER})
    assert_envelope(response, 404, "model_not_found", "model")
    response = httpx.post(server.url + "/tokenize", json={"messages": USER * 3})
    assert_envelope(response, 400, "invalid_request_error", "messages")
    with_tools = httpx.post(server.url + "/tokenize", json={"messages": USER, "tools": tools})
    without = httpx.post(server.url + "/tokenize",
                         json={"messages": USER, "tools": tools, "tool_choice": "none"})
    chat = server.client().chat.completions.create(model=MODEL, messages=USER, tools=tools,
                                                   tool_choice="none")
    assert without.json()["count"] == chat.usage.prompt_tokens < with_tools.json()["count"]


@pytest.mark.parametrize("body,param", [
    ({"model": MODEL, "messages": USER, "n": "3"}, "n"),
    ({"model": MODEL, "messages": USER, "n": True}, "n"),
    ({"model": MODEL, "messages": USER, "stream": "yes"}, "stream"),
    ({"model": MODEL, "messages": USER, "max_tokens": 5.5}, "max_tokens"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"},
                                   {"role": "assistant", "content": [{"type": "refusal",
                                                                      "refusal": "no"}]}]},
     "messages.1.content.0.type"),
])
def test_types_are_checked_not_coerced(serve, body, param):
    server = serve()
    assert_envelope(httpx.post(server.url + "/v1/chat/completions", json=body), 400,
                    "invalid_request_error", param)
    assert server.engine.calls == []


@pytest.mark.parametrize("raw", [b"", b"null", b"[]", b'"hi"', b"3"])
def test_a_body_that_is_no_object(serve, raw):
    server = serve()
    response = httpx.post(server.url + "/v1/chat/completions", content=raw,
                          headers={"content-type": "application/json"})
    error = assert_envelope(response, 400, "invalid_request_error", None)
    assert "JSON object" in error["message"]
