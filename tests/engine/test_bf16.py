"""The real server on the tiny bf16 gpt-oss (random weights), driven by the openai SDK."""

from __future__ import annotations

import time

import httpx
import pytest

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
            busy = metric_values(bf16_server, ENGINE_SERIES)
            assert busy["gptoss_engine_requests_running"] + busy[
                "gptoss_engine_requests_waiting"] >= 1, (busy, received)
            # leaving the block closes the connection mid-stream
    deadline = time.monotonic() + 2.0
    while True:
        values = metric_values(bf16_server, ENGINE_SERIES)
        if not any(values.values()):
            break
        assert time.monotonic() < deadline, f"engine still busy 2 s after disconnect: {values}"
        time.sleep(0.1)
