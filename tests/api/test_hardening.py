"""Limits, admission control, watchdog, soak and auth path confusion (scripted engine)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
import time

import httpx
import psutil
import pytest

from tests.conftest import MODEL, wait_for
from tests.corpus import COMPLETIONS, WEATHER_TOOL

USER = [{"role": "user", "content": "hi"}]
BASE = {"model": MODEL, "messages": USER}
LIMITS = {"max_messages": 3, "max_message_chars": 100, "max_n": 2, "max_stop_strings": 2,
          "max_stop_chars": 5, "max_tools": 1, "max_tool_schema_bytes": 300,
          "max_logit_bias": 2, "max_request_bytes": 4096}
TOOL2 = {"type": "function", "function": {"name": "other", "parameters": {}}}

# (body changes, expected status, expected param)
OVER_LIMIT = [
    ({"messages": USER * 4}, 400, "messages"),
    ({"messages": [{"role": "user", "content": "x" * 101}]}, 400, "messages"),
    ({"n": 3}, 400, "n"),
    ({"stop": ["a", "b", "c"]}, 400, "stop"),
    ({"stop": "toolong"}, 400, "stop"),
    ({"tools": [WEATHER_TOOL, TOOL2]}, 400, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "big", "description": "d" * 400}}]},
     400, "tools"),
    ({"logit_bias": {"1": 1, "2": 1, "3": 1}}, 400, "logit_bias"),
    ({"logit_bias": {"999999999": 1}}, 400, "logit_bias"),
    ({"logit_bias": {"12": 500}}, 400, "logit_bias"),
    ({"top_logprobs": 50}, 400, "top_logprobs"),
    ({"logprobs": "yes"}, 400, "logprobs"),
    ({"top_logprobs": 3}, 400, "top_logprobs"),
    ({"temperature": 2.5}, 400, "temperature"),
    ({"top_p": 0}, 400, "top_p"),
    ({"presence_penalty": 3}, 400, "presence_penalty"),
    ({"frequency_penalty": -3}, 400, "frequency_penalty"),
    ({"stream_options": {"include_usage": True}}, 400, "stream_options"),
    ({"tool_choice": "required"}, 400, "tool_choice"),  # a call, but no tools to call
    ({"tool_choice": {"type": "function", "function": {"name": "nope"}}, "tools": [WEATHER_TOOL]},
     400, "tool_choice.function.name"),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "nonsense"}}}}, 400, "response_format.json_schema.schema"),
    ({"reasoning_effort": "extreme"}, 400, "reasoning_effort"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     400, "messages.0.content.0.type"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, 400,
     "messages.0.tool_call_id"),
    ({"messages": [{"role": "user", "content": "x" * 5000}]}, 413, None),
]


@pytest.mark.parametrize("change,status,param", OVER_LIMIT,
                         ids=[f"{i}-{p}" for i, (_, _, p) in enumerate(OVER_LIMIT)])
def test_over_limit_requests_never_reach_the_engine(serve, change, status, param):
    server = serve(**LIMITS)
    response = httpx.post(server.url + "/v1/chat/completions", json={**BASE, **change})
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert server.engine.calls == []


def test_admission_two_in_flight_none_queued(serve, monkeypatch):
    server = serve([COMPLETIONS["long"]], max_concurrent_requests=2, max_queued_requests=0)
    lifecycle = server.app.state.lifecycle
    release = threading.Event()
    scripted = server.engine.generate

    async def held(request):
        # The scripted generation, paused after its first 8 tokens (the first visible chunk
        # needs 4) until the test releases it: admitted requests stay in flight however slowly
        # the refused ones arrive.
        async with contextlib.aclosing(scripted(request)) as deltas:
            steps = 0
            async for delta in deltas:
                yield delta
                steps += 1
                while steps == 8 and not release.is_set():
                    await asyncio.sleep(0.01)

    monkeypatch.setattr(server.engine, "generate", held)
    url = "/v1/chat/completions"
    with server.http() as http, contextlib.ExitStack() as stack:
        # a stream's status line arrives only after admission and its first chunk
        streams = [stack.enter_context(http.stream("POST", url, json={**BASE, "stream": True}))
                   for _ in range(2)]
        assert [r.status_code for r in streams] == [200, 200]
        assert lifecycle.in_flight == 2
        refused = [http.post(url, json=BASE, timeout=10) for _ in range(2)]
        for r in refused:
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] and r.json()["error"]["code"] == "server_overloaded"
        release.set()
        for r in streams:
            assert [line for line in r.iter_lines() if line][-1] == "data: [DONE]"
        # the slot is freed just after [DONE] is written, not before the client reads it
        wait_for(lambda: lifecycle.in_flight == 0, what="both slots to be freed")
        assert http.post(url, json=BASE).status_code == 200


def test_watchdog_fails_ready_when_the_engine_stalls(serve):
    server = serve([COMPLETIONS["plain"]], token_delay=30, watchdog_ready_after=2,
                   watchdog_health_after=4, request_timeout=60, stream_idle_timeout=60)
    active = server.app.state.pipeline.active
    sock = server.open_request(BASE)  # its first token is 30 s away: the engine "stalls"
    probes = []  # (path, stall when sent, stall when answered, status code, status)
    try:
        wait_for(lambda: active, what="the request to reach the engine")
        generation = next(iter(active.values()))

        def stalled_for() -> float:  # no token yet: the watchdog counts from the start
            return time.monotonic() - generation.started

        def probe(path: str) -> int:
            sent = stalled_for()
            response = httpx.get(server.url + path)
            probes.append((path, sent, stalled_for(), response.status_code,
                           response.json()["status"]))
            return response.status_code

        def both_failed() -> bool:
            ready, health = probe("/ready"), probe("/health")
            return ready == health == 503

        wait_for(both_failed, what="/ready and /health to fail")
    finally:
        sock.close()
    # Each probe is judged by how long the stall had lasted when it was sent and answered, so
    # no check depends on when the test thread got to run: "ok" only before the threshold,
    # "stalled" only after it.
    for path, sent, answered, code, status in probes:
        threshold = 2 if path == "/ready" else 4
        if code == 200:
            assert status == "ok" and sent <= threshold, (path, sent, status)
        else:
            assert (code, status) == (503, "stalled") and answered > threshold, (path, answered)


def test_stream_idle_timeout_aborts_with_error_frame(serve):
    server = serve([COMPLETIONS["plain"]], chunk_size=3, token_delay=0.05, stream_idle_timeout=0.01)
    with httpx.stream("POST", server.url + "/v1/chat/completions",
                      json={**BASE, "stream": True}) as response:
        status = response.status_code
        body = response.read().decode()
    # the first step already times out: a real status, before any chunk
    assert status == 504 or '"timeout"' in body
    assert server.engine.aborted


def test_soak_2000_requests_rss_and_in_flight(serve):
    server = serve([COMPLETIONS["plain"], COMPLETIONS["tool_in_channel"]])
    bodies = [BASE, {**BASE, "stream": True}, {**BASE, "tools": [WEATHER_TOOL]},
              {**BASE, "n": 99}, {"model": "nope", "messages": USER}]
    process = psutil.Process()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        gauge_before = _in_flight_gauge(http)
        for i in range(200):  # warm-up: allocator and caches settle
            http.post("/v1/chat/completions", json=bodies[i % 5]).read()
        gc.collect()
        before = process.memory_info().rss
        for i in range(2000):
            http.post("/v1/chat/completions", json=bodies[i % 5]).read()
        gc.collect()
        growth = process.memory_info().rss - before
        # a stream's slot is freed just after its last write: give the last one a moment
        wait_for(lambda: server.app.state.lifecycle.in_flight == 0, what="no request in flight")
        after = _in_flight_gauge(http)
    assert growth < 50 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB"
    # the gauge is process-wide (shared with other test servers): it must be back where it was
    assert after == gauge_before


def _in_flight_gauge(http: httpx.Client) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("gptoss_requests_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no gptoss_requests_in_flight on /metrics")


def _raw_get(url: str, target: str, headers: str = "") -> int:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
                     .encode())
        head = b""
        while b"\r\n" not in head:  # the status line may come in pieces
            piece = sock.recv(64)
            assert piece, f"connection closed before a status line: {head!r}"
            head += piece
        return int(head.split()[1])


@pytest.mark.parametrize("target", ["/v1/models", "//v1/models", "/v1//models", "/v1/models/",
                                    "/V1/MODELS", "/v1%2Fmodels", "/health/../v1/models",
                                    "/./v1/models", "/health/", "/HEALTH", "/ready%00",
                                    "/openapi.json", "/docs", "/tokenize"])
def test_no_path_variant_skips_auth(serve, target):
    server = serve(api_key=["sk-secret"])
    assert _raw_get(server.url, target) == 401
    assert _raw_get(server.url, target, "Host: evil\r\n") == 401


def test_probes_and_metrics_open_without_key(serve):
    server = serve(api_key=["sk-secret"])
    for path in ("/health", "/ready", "/metrics"):
        assert _raw_get(server.url, path) == 200
    for path in ("/health", "/ready"):  # load balancers that probe with HEAD
        response = httpx.head(server.url + path)
        assert response.status_code == 200 and response.content == b""
    protected = serve(api_key=["sk-secret"], protect_metrics=True)
    assert _raw_get(protected.url, "/metrics") == 401


def test_total_request_timeout_ends_stream_with_error_frame_and_aborts(serve):
    # first chunk after ~0.2 s, well inside the 2 s limit; the whole stream would take 6.6 s
    server = serve([COMPLETIONS["long"]], token_delay=0.05, request_timeout=2.0)
    with httpx.stream("POST", server.url + "/v1/chat/completions",
                      json={**BASE, "stream": True}) as response:
        assert response.status_code == 200
        frames = [line for line in response.iter_lines() if line]
    assert frames[-1] == "data: [DONE]" and '"code":"timeout"' in frames[-2]
    assert server.engine.aborted


def test_cache_salt_per_key_isolates_tenants(serve):
    server = serve(api_key=["sk-a", "sk-b"], cache_salt_per_key=True)
    for key in ("sk-a", "sk-b", "sk-a"):
        httpx.post(server.url + "/v1/chat/completions", json=BASE,
                   headers={"Authorization": f"Bearer {key}"}).raise_for_status()
    salts = [call.options.cache_salt for call in server.engine.calls]
    assert salts[0] and salts[0] == salts[2] != salts[1]
    assert "sk-a" not in salts[0]
    plain = serve(api_key=["sk-a"])
    httpx.post(plain.url + "/v1/chat/completions", json=BASE,
               headers={"Authorization": "Bearer sk-a"}).raise_for_status()
    assert plain.engine.calls[0].options.cache_salt is None


def test_metrics_carry_no_user_text_or_keys(serve):
    server = serve(api_key=["sk-metrics-secret"])
    marker = "metrics-marker-9931"
    headers = {"Authorization": "Bearer sk-metrics-secret"}
    httpx.post(server.url + "/v1/chat/completions", headers=headers,
               json={**BASE, "messages": [{"role": "user", "content": marker}]})
    httpx.post(server.url + f"/v1/{marker}", headers=headers)
    text = httpx.get(server.url + "/metrics").text
    assert marker not in text and "sk-metrics-secret" not in text
    for series in ("gptoss_requests_total", "gptoss_time_to_first_token_seconds",
                   "gptoss_inter_token_latency_seconds", "gptoss_completion_tokens_total",
                   "gptoss_requests_in_flight", "gptoss_aborts_total",
                   "gptoss_harmony_parse_errors_total", "gptoss_auth_failures_total",
                   "gptoss_request_duration_seconds"):
        assert series in text


def test_the_start_up_heap_is_frozen_once_the_engine_is_ready(serve):
    """Full collections must not rescan what start-up allocated (they paused every stream for
    tens of ms on the real engine, ~2x the median time to first token)."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    server = serve([COMPLETIONS["plain"]])
    assert httpx.get(server.url + "/ready").status_code == 200
    assert gc.get_freeze_count() > 0
