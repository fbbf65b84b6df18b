"""Chat Completions through the official openai SDK, every case in both modes."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.api.helpers import acomplete, complete
from tests.conftest import MODEL, wait_for
from tests.corpus import COMPLETIONS, WEATHER_TOOL

USER = [{"role": "user", "content": "What's the weather in Paris?"}]
both_modes = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])


def prompt_count(server, **body) -> int:
    with server.http() as http:
        return http.post("/tokenize", json={"messages": USER, **body}).json()["count"]


@both_modes
def test_plain_answer_with_reasoning(serve, stream):
    server = serve([COMPLETIONS["plain"]])
    [choice], usage = complete(server.client(), stream, model=MODEL, messages=USER)
    assert choice.reasoning_content == choice.reasoning == "User says hi. Reply briefly."
    assert choice.content == "Hello! How can I help?"
    assert choice.finish_reason == "stop" and choice.tool_calls == []
    assert usage.prompt_tokens == prompt_count(server)
    assert usage.completion_tokens_details.reasoning_tokens == 7
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@both_modes
def test_final_only_answer(serve, stream):
    server = serve([COMPLETIONS["final_only"]])
    [choice], usage = complete(server.client(), stream, model=MODEL, messages=USER)
    assert (choice.reasoning_content, choice.content) == ("", "Just the answer.")
    assert usage.completion_tokens_details.reasoning_tokens == 0


@both_modes
@pytest.mark.parametrize("name,city", [("tool_in_channel", "Paris"), ("tool_in_role", "Oslo"),
                                       ("tool_first_in_role", "Rome"), ("glued_json", "Kyiv"),
                                       ("tool_on_analysis", "Quito")])
def test_tool_call(serve, stream, name, city):
    server = serve([COMPLETIONS[name]])
    [choice], _ = complete(server.client(), stream, model=MODEL, messages=USER,
                           tools=[WEATHER_TOOL])
    assert choice.finish_reason == "tool_calls"
    [call] = choice.tool_calls
    assert call["name"] == "get_weather" and call["id"].startswith("call_")
    assert json.loads(call["arguments"]) == {"city": city}


@both_modes
def test_preamble_then_tool_call(serve, stream):
    server = serve([COMPLETIONS["preamble_then_tool"]])
    [choice], _ = complete(server.client(), stream, model=MODEL, messages=USER,
                           tools=[WEATHER_TOOL])
    assert choice.content == "Let me check the weather."
    assert [c["name"] for c in choice.tool_calls] == ["get_weather"]
    assert choice.finish_reason == "tool_calls"


@both_modes
@pytest.mark.parametrize("max_tokens,where", [(5, "reasoning"), (19, "content")])
def test_truncation_by_max_tokens(serve, stream, max_tokens, where):
    server = serve([COMPLETIONS["plain"]])
    [choice], usage = complete(server.client(), stream, model=MODEL, messages=USER,
                               max_tokens=max_tokens)
    assert choice.finish_reason == "length"
    assert usage.completion_tokens == max_tokens
    if where == "reasoning":
        assert choice.reasoning and "User says hi. Reply briefly.".startswith(choice.reasoning)
        assert choice.content == ""
    else:
        assert choice.content and "Hello! How can I help?".startswith(choice.content)
        assert choice.content != "Hello! How can I help?"


@both_modes
def test_multibyte_characters_split_across_tokens(serve, stream):
    server = serve([COMPLETIONS["multibyte"]])
    [choice], _ = complete(server.client(), stream, model=MODEL, messages=USER)
    assert choice.content == "Voilà: 🫠𓀀 🧑‍🚀 龘 ꙮ — 日本語, ½ °C ✓"
    assert choice.reasoning == "Emoji and CJK: 😀🎉 日本語."


@both_modes
@pytest.mark.parametrize("name", ["malformed", "control_in_body"])
def test_malformed_harmony_returns_what_parsed(serve, stream, name):
    server = serve([COMPLETIONS[name]])
    before = _metric(server, "gptoss_harmony_parse_errors_total")
    [choice], _ = complete(server.client(), stream, model=MODEL, messages=USER)
    assert choice.content == "Good start" and choice.finish_reason == "stop"
    assert _metric(server, "gptoss_harmony_parse_errors_total") == before + 1


@both_modes
def test_n_choices(serve, stream):
    server = serve([COMPLETIONS["plain"], COMPLETIONS["final_only"], COMPLETIONS["tool_in_role"]])
    choices, usage = complete(server.client(), stream, model=MODEL, messages=USER, n=3,
                              tools=[WEATHER_TOOL])
    assert len(choices) == 3 and len(server.engine.calls) == 3
    contents = sorted(c.content for c in choices)
    assert contents == ["", "Hello! How can I help?", "Just the answer."]
    assert sorted(c.finish_reason for c in choices) == ["stop", "stop", "tool_calls"]
    assert usage.prompt_tokens == prompt_count(server, tools=[WEATHER_TOOL])
    generated = [len(server.engine._tokens_for(call)[0]) for call in server.engine.calls]
    assert usage.completion_tokens == sum(generated)
    assert server.engine.aborted == []  # each ran to its end: nothing to abort


@both_modes
def test_stop_string_cuts_content_and_aborts(serve, stream):
    server = serve([COMPLETIONS["plain"]], token_delay=0.001)
    [choice], _ = complete(server.client(), stream, model=MODEL, messages=USER, stop=["How"])
    assert choice.content == "Hello! " and choice.finish_reason == "stop"
    assert server.engine.aborted, "reaching a stop string stops the engine request"


@both_modes
def test_stop_string_never_seen_leaves_content_whole(serve, stream):
    server = serve([COMPLETIONS["plain"]])
    [choice], _ = complete(server.client(), stream, model=MODEL, messages=USER,
                           stop=["Help?!", "zzz"])
    assert choice.content == "Hello! How can I help?"


def test_usage_chunk_only_when_asked(serve):
    server = serve([COMPLETIONS["plain"]])
    chunks = list(server.client().chat.completions.create(model=MODEL, messages=USER,
                                                         stream=True))
    assert all(c.usage is None for c in chunks) and chunks[0].choices[0].delta.role == "assistant"
    chunks = list(server.client().chat.completions.create(
        model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


async def test_async_client_both_modes(serve):
    server = serve([COMPLETIONS["tool_in_channel"]])
    client = server.async_client()
    for stream in (False, True):
        [choice], usage = await acomplete(client, stream, model=MODEL, messages=USER,
                                          tools=[WEATHER_TOOL])
        assert choice.tool_calls[0]["name"] == "get_weather"
        assert usage.completion_tokens > 0


def test_reasoning_field_setting_and_include_reasoning(serve):
    server = serve([COMPLETIONS["plain"]], reasoning_field="reasoning")
    response = server.client().chat.completions.create(model=MODEL, messages=USER)
    extra = response.choices[0].message.model_extra
    assert extra["reasoning"] and "reasoning_content" not in extra
    response = server.client().chat.completions.create(
        model=MODEL, messages=USER, extra_body={"include_reasoning": False})
    assert "reasoning" not in response.choices[0].message.model_extra
    assert response.choices[0].message.content == "Hello! How can I help?"


def test_request_parameters_reach_the_engine(serve):
    server = serve([COMPLETIONS["plain"]], harmony_date="2026-03-04")
    server.client().chat.completions.create(
        model=MODEL, messages=USER, temperature=0.3, top_p=0.9, presence_penalty=0.5,
        frequency_penalty=-0.5, seed=7, max_completion_tokens=40, logit_bias={"42": 5},
        reasoning_effort="high", extra_body={"top_k": 20, "min_p": 0.05, "unknown_field": 1})
    options = server.engine.calls[-1].options
    assert (options.temperature, options.top_p, options.top_k, options.min_p) == (0.3, 0.9, 20, 0.05)
    assert (options.presence_penalty, options.frequency_penalty, options.seed) == (0.5, -0.5, 7)
    assert options.max_tokens == 40 and options.logit_bias == {42: 5.0}
    assert set(options.stop_token_ids) == {200002, 200012}
    prompt = server.engine.calls[-1].prompt_token_ids
    text = server.app.state.harmony.decode_text(prompt)
    assert "Reasoning: high" in text and "Current date: 2026-03-04" in text


@pytest.mark.parametrize("effort,rendered", [("minimal", "low"), ("xhigh", "high"), (None, "medium")])
def test_reasoning_effort_aliases_and_openrouter_object(serve, effort, rendered):
    server = serve()
    body = {"reasoning": {"effort": effort}} if effort else {}
    server.client().chat.completions.create(model=MODEL, messages=USER, extra_body=body)
    text = server.app.state.harmony.decode_text(server.engine.calls[-1].prompt_token_ids)
    assert f"Reasoning: {rendered}" in text


def test_n_seeds_differ_per_choice(serve):
    server = serve()
    server.client().chat.completions.create(model=MODEL, messages=USER, n=2, seed=10)
    assert sorted(c.options.seed for c in server.engine.calls) == [10, 11]


def _wait_for_abort(server, sent: float, runs_for: float) -> None:
    """Wait until the engine request is aborted and no longer running (one condition: the
    engine records the abort a moment before it drops the request), and before the script
    could have run to its end (``runs_for`` seconds after ``sent``)."""
    wait_for(lambda: server.engine.aborted and server.engine.stats().running == 0,
             what="the engine request to be aborted")
    assert time.monotonic() - sent < runs_for, "the request may have run to its natural end"


def test_client_disconnect_aborts_the_engine_request(serve):
    server = serve([COMPLETIONS["long"]], token_delay=0.1)  # 132 tokens: 13.2 s
    body = {"model": MODEL, "messages": USER, "stream": True}
    sent = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            next(response.iter_lines())
    _wait_for_abort(server, sent, runs_for=13.2)


def test_non_stream_disconnect_aborts_too(serve):
    server = serve([COMPLETIONS["long"]], token_delay=0.1)  # 132 tokens: 13.2 s
    sent = time.monotonic()
    sock = server.open_request({"model": MODEL, "messages": USER})
    # leave only once the engine has the request (a client timeout could fire before the server
    # has even read the body: then the engine is never called)
    wait_for(lambda: server.engine.calls, what="the request to reach the engine")
    sock.close()
    _wait_for_abort(server, sent, runs_for=13.2)


def _metric(server, name: str) -> float:
    with server.http() as http:
        for line in http.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def test_disconnect_before_the_first_chunk_aborts_too(serve):
    # the first engine step is 30 s away: an abort seen before then came before any step
    server = serve([COMPLETIONS["plain"]], token_delay=30)
    sent = time.monotonic()
    sock = server.open_request({"model": MODEL, "messages": USER, "stream": True})
    wait_for(lambda: server.engine.calls, what="the request to reach the engine")
    sock.close()
    _wait_for_abort(server, sent, runs_for=30)


def test_tokenize_shows_the_rendered_prompt(serve):
    server = serve()
    with server.http() as http:
        body = http.post("/tokenize", json={"messages": USER, "tools": [WEATHER_TOOL],
                                            "reasoning_effort": "high"}).json()
    assert set(body) == {"count", "max_model_len", "tokens", "prompt"}
    assert body["count"] == len(body["tokens"]) and body["max_model_len"] == 131072
    assert body["prompt"].startswith("<|start|>system<|message|>")
    assert "Reasoning: high" in body["prompt"] and "type get_weather" in body["prompt"]
    assert body["prompt"].endswith("<|start|>user<|message|>What's the weather in Paris?<|end|>"
                                   "<|start|>assistant")
