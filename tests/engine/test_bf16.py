"""The real server on the tiny bf16 gpt-oss (random weights), driven by the openai SDK."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import wait_for
from tests.engine.helpers import (
    CHATTY_BIAS,
    ENGINE_SERIES,
    MESSAGES,
    check_completion,
    check_concurrent_streams,
    check_context_length,
    check_length,
    metric_values,
    stream_once,
)

pytestmark = pytest.mark.engine

GENERATED = "vllm:generation_tokens_total"


def test_models_report_real_max_model_len(bf16_server):
    models = bf16_server.client().models.list()
    assert [m.id for m in models.data] == [bf16_server.model]
    assert models.data[0].model_extra["max_model_len"] == 4096


def test_non_stream(bf16_server):
    check_completion(bf16_server)


def test_non_stream_n2(bf16_server):
    check_completion(bf16_server, n=2)


def test_stream(bf16_server):
    stream_once(bf16_server)


def test_stream_n2(bf16_server):
    stream_once(bf16_server, n=2)


def test_max_tokens_gives_length(bf16_server):
    check_length(bf16_server)


def test_16_concurrent_streams(bf16_server):
    check_concurrent_streams(bf16_server)


def test_prompt_over_context_is_400_and_engine_serves_on(bf16_server):
    check_context_length(bf16_server)


def test_vllm_metrics_on_our_metrics(bf16_server):
    values = metric_values(bf16_server, ("vllm:generation_tokens_total",))
    assert values["vllm:generation_tokens_total"] > 0


def test_client_disconnect_aborts_engine_request(bf16_server):
    body = {"model": bf16_server.model, "messages": MESSAGES, "max_tokens": 3000,
            "stream": True,
            "logit_bias": CHATTY_BIAS}
    with httpx.Client(base_url=bf16_server.base_url, timeout=60) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            # keep the iterator referenced: a finalised iter_lines() closes the connection
            lines = response.iter_lines()
            received = []
            while len(received) < 3:
                line = next(lines)
                if line:
                    received.append(line)
            # the engine is busy with the request now
            busy = metric_values(bf16_server, (*ENGINE_SERIES, GENERATED))
            assert busy["gptoss_engine_requests_running"] + busy[
                "gptoss_engine_requests_waiting"] >= 1, (busy, received)
            # leaving the block closes the connection mid-stream
    # vLLM's gauges move only when the engine reports its next step (over ZMQ): give it time.
    # Idle alone would not prove the abort (the request could have run to its end meanwhile),
    # so also count the tokens generated after the disconnect: a finished request adds ~3000.
    def idle_values() -> dict | None:
        values = metric_values(bf16_server, (*ENGINE_SERIES, GENERATED))
        return None if any(values[name] for name in ENGINE_SERIES) else values

    idle = wait_for(idle_values, timeout=30, interval=0.2,
                    what="the engine to go idle after the disconnect")
    after = idle[GENERATED] - busy[GENERATED]
    assert after < 500, f"{after:.0f} tokens generated after the disconnect: not aborted"
