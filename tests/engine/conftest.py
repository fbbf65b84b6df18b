"""Fixtures: the real server (``python -m server --engine vllm``) on the tiny models, as a process.

Each server starts once per module (engine start on 2 cores: about 20-60 s) and is always killed
in teardown, engine processes included.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.server_process import ServerProcess, attach_logs
from tests.server_process import start_server as _start

READY_TIMEOUT = float(os.environ.get("GPT_OSS_TEST_READY_TIMEOUT", "420"))
# Tests pass --enforce-eager (a vLLM engine flag, through our parser): no torch.compile warm-up.
ENGINE_FLAGS = ["--enforce-eager", "--max-num-seqs", "32"]
# For tests that hold a stream open while they act (admission, disconnect, engine death): a
# 32k context, so a stream can ask for LONG_STREAM_TOKENS (minutes of generation here). A test
# process can be starved for many seconds on a loaded 2-core machine while the server runs on
# (seen in CI: a 600-token stream ended before the test read /metrics), so "the stream is still
# going" must not rest on a few seconds of generation. The tiny config keeps 4,096 positions,
# hence vLLM's override (random weights: nothing to lose by going past them).
LONG_CONTEXT_FLAGS = ["--max-model-len", "32768"]
LONG_CONTEXT_ENV = {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"}


def start_server(model: str, tmp_dir: Path, *extra: str, long_context: bool = False
                 ) -> ServerProcess:
    flags = [*ENGINE_FLAGS, *(LONG_CONTEXT_FLAGS if long_context else []), *extra]
    return _start(["--engine", "vllm", "--model", model, *flags], tmp_dir, model=model,
                  ready_timeout=READY_TIMEOUT, env=LONG_CONTEXT_ENV if long_context else None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    attach_logs(item, report, ("bf16_server", "mxfp4_server", "server", "held_server"))
    return report


@pytest.fixture(scope="module")
def bf16_server(tmp_path_factory):
    server = start_server("gpt-oss-tiny-random", tmp_path_factory.mktemp("bf16"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mxfp4_server(tmp_path_factory):
    server = start_server("gpt-oss-tiny-random-mxfp4", tmp_path_factory.mktemp("mxfp4"))
    yield server
    server.stop()
