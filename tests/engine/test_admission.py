"""Admission control on the real CPU engine: 2 in flight, none queued -> 2 x 200, 2 x 503."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from tests.conftest import wait_for
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
    """The two held streams are admitted and have sent their first token before the other two
    are sent, so the order is fixed rather than left to thread timing. Each held stream asks for
    600 tokens (CHATTY_BIAS: no stop token), seconds of work on this CPU, while the two refusals
    take milliseconds, so neither held stream can end first."""
    server = admission_server
    url = server.base_url + "/v1/chat/completions"
    held_body = {"model": server.model, "messages": MESSAGES, "max_tokens": 600,
                 "logit_bias": CHATTY_BIAS, "stream": True}
    with httpx.Client(timeout=120) as client, contextlib.ExitStack() as stack:
        held = [stack.enter_context(client.stream("POST", url, json=held_body)) for _ in range(2)]
        lines = [response.iter_lines() for response in held]
        for response, response_lines in zip(held, lines, strict=True):
            assert response.status_code == 200
            assert next(line for line in response_lines if line.startswith("data: "))
        in_flight = metric_values(server, ("gptoss_requests_in_flight",))
        assert in_flight["gptoss_requests_in_flight"] == 2
        refused = [httpx.post(url, json={**held_body, "stream": False}, timeout=30)
                   for _ in range(2)]
        for response in refused:
            assert response.status_code == 503
            assert response.headers.get("retry-after")
            assert response.json()["error"]["code"] == "server_overloaded"
        for response_lines in lines:
            assert [line for line in response_lines if line][-1] == "data: [DONE]"
    assert httpx.get(server.base_url + "/health").status_code == 200
    assert httpx.get(server.base_url + "/ready").status_code == 200
    check_completion(server)  # the engine still serves
    # a stream's slot is freed just after its [DONE] is written: poll rather than read once
    wait_for(lambda: metric_values(server, ("gptoss_requests_in_flight",))
             == {"gptoss_requests_in_flight": 0}, timeout=30, interval=0.2,
             what="no request in flight")
