"""Streams held open on the real CPU engine: admission control (2 in flight, none queued ->
2 x 200, 2 x 503) and a client disconnect aborting the engine request.

Each held stream asks for LONG_STREAM_TOKENS (minutes of work here) and ends only when the test
closes it, so nothing below depends on how fast this machine generates or how long the test
process waits for a core."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from tests.conftest import wait_for
from tests.engine.conftest import start_server
from tests.engine.helpers import (
    CHATTY_BIAS,
    ENGINE_SERIES,
    LONG_STREAM_TOKENS,
    MESSAGES,
    check_completion,
    metric_values,
)

pytestmark = pytest.mark.engine

GENERATED = "vllm:generation_tokens_total"
IN_FLIGHT = "gptoss_requests_in_flight"


@pytest.fixture(scope="module")
def held_server(tmp_path_factory):
    server = start_server("gpt-oss-tiny-random", tmp_path_factory.mktemp("held"),
                          "--max-concurrent-requests", "2", "--max-queued-requests", "0",
                          long_context=True)
    yield server
    server.stop()


def held_body(server) -> dict:
    # CHATTY_BIAS: content from the first tokens on, and no stop token to end the stream early
    return {"model": server.model, "messages": MESSAGES, "max_tokens": LONG_STREAM_TOKENS,
            "logit_bias": CHATTY_BIAS, "stream": True}


def idle_values(server) -> dict | None:
    """The metrics if nothing is in flight or in the engine, else None."""
    values = metric_values(server, (*ENGINE_SERIES, GENERATED, IN_FLIGHT))
    return None if any(values[name] for name in (*ENGINE_SERIES, IN_FLIGHT)) else values


def wait_idle(server) -> dict:
    # a stream's slot is freed just after its connection goes, and vLLM's gauges move when the
    # engine reports its next step (over ZMQ): poll rather than read once
    return wait_for(lambda: idle_values(server), timeout=60, interval=0.2,
                    what="the server and engine to go idle")


def test_two_admitted_two_refused_engine_stays_healthy(held_server):
    """The two held streams are admitted and have sent their first token before the other two
    are sent, so the order is fixed rather than left to thread timing."""
    server = held_server
    url = server.base_url + "/v1/chat/completions"
    with httpx.Client(timeout=120) as client, contextlib.ExitStack() as stack:
        held = [stack.enter_context(client.stream("POST", url, json=held_body(server)))
                for _ in range(2)]
        lines = [response.iter_lines() for response in held]  # referenced: keeps them open
        for response, response_lines in zip(held, lines, strict=True):
            assert response.status_code == 200
            assert next(line for line in response_lines if line.startswith("data: "))
        assert metric_values(server, (IN_FLIGHT,))[IN_FLIGHT] == 2
        refused = [httpx.post(url, json={**held_body(server), "stream": False}, timeout=30)
                   for _ in range(2)]
        for response in refused:
            assert response.status_code == 503
            assert response.headers.get("retry-after")
            assert response.json()["error"]["code"] == "server_overloaded"
        assert metric_values(server, (IN_FLIGHT,))[IN_FLIGHT] == 2  # both still streaming
        # leaving the block closes both connections mid-stream: their slots must come back
    wait_idle(server)
    assert httpx.get(server.base_url + "/health").status_code == 200
    assert httpx.get(server.base_url + "/ready").status_code == 200
    check_completion(server)  # the engine still serves, in a freed slot


def test_client_disconnect_aborts_engine_request(held_server):
    server = held_server
    wait_idle(server)
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        with client.stream("POST", "/v1/chat/completions", json=held_body(server)) as response:
            assert response.status_code == 200
            lines = response.iter_lines()  # referenced: a finalised iterator closes the connection
            received = []
            while len(received) < 3:
                line = next(lines)
                if line:
                    received.append(line)
            busy = metric_values(server, (*ENGINE_SERIES, GENERATED))
            assert busy["gptoss_engine_requests_running"] + busy[
                "gptoss_engine_requests_waiting"] >= 1, (busy, received)
            # leaving the block closes the connection mid-stream
    idle = wait_idle(server)
    # Idle alone does not prove the abort (the request could have run to its end meanwhile):
    # count the tokens generated after the disconnect, far fewer than a finished request's.
    after = idle[GENERATED] - busy[GENERATED]
    assert after < LONG_STREAM_TOKENS / 3, f"{after:.0f} tokens after the disconnect: not aborted"
