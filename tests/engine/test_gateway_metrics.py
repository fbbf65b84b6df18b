"""What the Gateway API Inference Extension's endpoint picker reads from each replica's /metrics,
on the real CPU engine: vLLM's own series, under vLLM's own names, present and moving.

The picker (docs/deploy.md, the chart's inferencePool.*) scores pods by
`vllm:num_requests_waiting` (queue-scorer), `vllm:kv_cache_usage_perc`
(kv-cache-utilization-scorer) and `vllm:num_requests_running`, and reads the block size from the
labels of `vllm:cache_config_info`. If one of them disappeared or froze, routing would silently
degrade to guessing.

The server runs with one engine slot (--max-num-seqs 1), so a second request queues in vLLM's
scheduler: "waiting" moves too. Each request asks for LONG_STREAM_TOKENS (minutes of work here)
with every Harmony control token suppressed, so only the test ends it (by closing its
connection), and every check polls /metrics until the value shows (vLLM's gauges move when the
engine reports its next step): nothing depends on how fast this machine generates or how long
the test waits for a core.
"""

from __future__ import annotations

import importlib.util
import json
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for
from tests.engine.conftest import start_server
from tests.engine.helpers import LONG_STREAM_TOKENS, MESSAGES

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM (the CPU build)"),
]

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_USAGE = "vllm:kv_cache_usage_perc"
CACHE_INFO = "vllm:cache_config_info"
PICKER_SERIES = (WAITING, RUNNING, KV_USAGE, CACHE_INFO)
NO_CONTROL_TOKENS = {str(token): -100 for token in range(199998, 200019)}
# Generous: CI runs on 2 busy cores. Only a broken server waits this long.
DEADLINE_S = 90


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # the last --max-num-seqs wins over the engine tests' default of 32
    server = start_server("gpt-oss-tiny-random", tmp_path_factory.mktemp("gateway-metrics"),
                          "--max-num-seqs", "1", long_context=True)
    yield server
    server.stop()


def scrape(server) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample on /metrics by series name: [(labels, value), ...]."""
    response = httpx.get(server.base_url + "/metrics", timeout=10)
    assert response.status_code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples, name: str) -> float:
    return sum(value for _, value in samples[name])


def gauges(server) -> dict[str, float]:
    samples = scrape(server)
    return {name: total(samples, name) for name in (WAITING, RUNNING, KV_USAGE)}


def wait_gauges(server, condition, what: str) -> dict[str, float]:
    def check():
        values = gauges(server)
        return values if condition(values) else None
    return wait_for(check, timeout=DEADLINE_S, interval=0.1, what=what)


def held_body(server) -> dict:
    # Harmony's control tokens suppressed (ids 199998-200018): no stop token and no header can
    # end the random model's generation early, so the request runs until the test closes it
    return {"model": server.model, "messages": MESSAGES, "max_tokens": LONG_STREAM_TOKENS,
            "logit_bias": NO_CONTROL_TOKENS, "stream": True}


def send_unread(server, body: dict) -> socket.socket:
    """POST `body` on a raw socket and leave the answer unread: closing the socket is the
    client going away, which aborts the request. (Its answer is not needed: the gauges tell
    where the request is. Nor would it come soon: the server sends the 200 with the first
    frame, after the request leaves vLLM's queue and the model has written a Harmony header.)"""
    payload = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
                 + payload)
    return sock


def idle(server) -> dict[str, float]:
    return wait_gauges(server, lambda v: v[RUNNING] == 0 and v[WAITING] == 0 and v[KV_USAGE] == 0,
                       "the engine to go idle (nothing running or waiting, no KV cache in use)")


def test_the_picker_series_are_exported_under_vllms_names(server):
    samples = scrape(server)
    missing = [name for name in PICKER_SERIES if name not in samples]
    assert not missing, f"not on /metrics: {missing}"
    # one info sample (value 1) whose labels carry the cache geometry the picker reads
    ((labels, value),) = samples[CACHE_INFO]
    assert value == 1
    assert int(labels["block_size"]) > 0
    assert int(labels["num_gpu_blocks"]) > 0
    # the gauges are plain numbers: usage is a fraction, counts are whole
    values = idle(server)
    assert 0 <= values[KV_USAGE] <= 1


def test_running_waiting_and_kv_usage_follow_requests_in_flight(server):
    before = idle(server)
    assert before == {WAITING: 0, RUNNING: 0, KV_USAGE: 0}
    with send_unread(server, held_body(server)):
        running = wait_gauges(server, lambda v: v[RUNNING] == 1 and v[KV_USAGE] > 0,
                              "one request running with KV cache in use")
        assert running[WAITING] == 0
        # its KV cache grows with its tokens (a block at a time): usage rises while it runs
        grown = wait_gauges(server, lambda v: v[KV_USAGE] > running[KV_USAGE],
                            f"KV-cache usage to grow past {running[KV_USAGE]}")
        assert grown[RUNNING] == 1
        # one engine slot: a second request queues in vLLM's scheduler (the queue-scorer's signal)
        with send_unread(server, held_body(server)):
            queued = wait_gauges(server, lambda v: v[WAITING] == 1, "a second request to wait")
            assert queued[RUNNING] == 1
            # leaving the block closes the queued request's connection: it is aborted
        wait_gauges(server, lambda v: v[WAITING] == 0, "the queue to empty")
        # leaving the block closes the first request's connection mid-generation
    after = idle(server)
    assert after == before
