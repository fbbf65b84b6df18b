"""The real server on the tiny bf16 gpt-oss (random weights), driven by the openai SDK."""

from __future__ import annotations

import pytest

from tests.engine.helpers import (
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
