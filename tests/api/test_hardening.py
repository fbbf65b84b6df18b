"""Limits, admission control, watchdog, soak and auth path confusion (scripted engine)."""

from __future__ import annotations

import concurrent.futures
import gc
import socket
import time

import httpx
import psutil
import pytest

from tests.conftest import MODEL
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
    ({"logprobs": True}, 400, "logprobs"),
    ({"temperature": 2.5}, 400, "temperature"),
    ({"top_p": 0}, 400, "top_p"),
    ({"presence_penalty": 3}, 400, "presence_penalty"),
    ({"frequency_penalty": -3}, 400, "frequency_penalty"),
    ({"stream_options": {"include_usage": True}}, 400, "stream_options"),
    ({"tool_choice": "required", "tools": [WEATHER_TOOL]}, 400, "tool_choice"),
    ({"response_format": {"type": "json_object"}}, 400, "response_format"),
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


def test_admission_two_in_flight_none_queued(serve):
    server = serve([COMPLETIONS["long"]], token_delay=0.01, max_concurrent_requests=2,
                   max_queued_requests=0)

    def call(_):
        return httpx.post(server.url + "/v1/chat/completions", json=BASE, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(call, range(4)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 503, 503]
    for r in responses:
        if r.status_code == 503:
            assert r.headers["retry-after"] and r.json()["error"]["code"] == "server_overloaded"
    assert httpx.post(server.url + "/v1/chat/completions", json=BASE).status_code == 200


def test_watchdog_fails_ready_when_the_engine_stalls(serve):
    server = serve([COMPLETIONS["plain"]], token_delay=30, watchdog_ready_after=0.5,
                   watchdog_health_after=1.5, request_timeout=60, stream_idle_timeout=60)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(httpx.post, server.url + "/v1/chat/completions", json=BASE, timeout=3)
        time.sleep(0.2)
        assert httpx.get(server.url + "/ready").status_code == 200
        time.sleep(0.6)
        assert httpx.get(server.url + "/ready").json() == {"status": "stalled"}
        time.sleep(1.0)
        assert httpx.get(server.url + "/health").status_code == 503


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
        for i in range(200):  # warm-up: allocator and caches settle
            http.post("/v1/chat/completions", json=bodies[i % 5]).read()
        gc.collect()
        before = process.memory_info().rss
        for i in range(2000):
            http.post("/v1/chat/completions", json=bodies[i % 5]).read()
        gc.collect()
        growth = process.memory_info().rss - before
        metrics = http.get("/metrics").text
    assert growth < 50 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB"
    assert "gptoss_requests_in_flight 0.0" in metrics


def _raw_get(url: str, target: str, headers: str = "") -> int:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
                     .encode())
        return int(sock.recv(64).split()[1])


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
    protected = serve(api_key=["sk-secret"], protect_metrics=True)
    assert _raw_get(protected.url, "/metrics") == 401


def test_total_request_timeout_ends_stream_with_error_frame_and_aborts(serve):
    server = serve([COMPLETIONS["long"]], token_delay=0.05, request_timeout=0.4)
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
