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


def start_server(model: str, tmp_dir: Path, *extra: str) -> ServerProcess:
    return _start(["--engine", "vllm", "--model", model, *ENGINE_FLAGS, *extra], tmp_dir,
                  model=model, ready_timeout=READY_TIMEOUT)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    attach_logs(item, report, ("bf16_server", "mxfp4_server", "server", "admission_server"))
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
