"""Admission control on the real CPU engine: 2 in flight, none queued -> 2 x 200, 2 x 503."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from tests.engine.conftest import start_server
from tests.engine.helpers import CHATTY_BIAS, MESSAGES, check_completion, metric_values

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def admission_server(tmp_path_factory):
    server = start_server("gpt-oss-tiny-random", tmp_path_factory.mktemp("admission"),
                          "--max-concurrent-requests", "2", "--max-queued-requests", "0")
    yield server
    server.stop()


def test_two_admitted_two_refused_engine_stays_healthy(admission_server):
    server = admission_server
    body = {"model": server.model, "messages": MESSAGES, "max_tokens": 200,
            "logit_bias": CHATTY_BIAS, "stream": True}

    def call(_):
        with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body,
                          timeout=120) as response:
            return response.status_code, response.headers.get("retry-after"), response.read()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, range(4)))
    assert sorted(status for status, _, _ in results) == [200, 200, 503, 503]
    for status, retry_after, body_bytes in results:
        if status == 503:
            assert retry_after and b"server_overloaded" in body_bytes
        else:
            assert body_bytes.rstrip().endswith(b"data: [DONE]")
    assert httpx.get(server.base_url + "/health").status_code == 200
    assert httpx.get(server.base_url + "/ready").status_code == 200
    check_completion(server)  # the engine still serves
    running = metric_values(server, ("gptoss_requests_in_flight",))
    assert running["gptoss_requests_in_flight"] == 0
