"""The real server on the trained gpt-oss-tiny: ``python -m server --engine vllm --model gpt-oss-tiny``.

Started once per test module with no flag other than host and port (the CPU engine settings are the
built-in name's defaults), waited for on GET /ready, and killed in teardown with its engine
processes. Its log is attached to failing tests' reports.
"""

from __future__ import annotations

import os

import anthropic
import pytest

from tests.server_process import attach_logs, start_server

READY_TIMEOUT = float(os.environ.get("GPT_OSS_TEST_READY_TIMEOUT", "420"))


@pytest.fixture(scope="module")
def trained_server(tmp_path_factory):
    server = start_server(["--engine", "vllm", "--model", "gpt-oss-tiny"],
                          tmp_path_factory.mktemp("gpt-oss-tiny"), model="gpt-oss-tiny",
                          ready_timeout=READY_TIMEOUT)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(trained_server):
    return trained_server.client()


@pytest.fixture(scope="module")
def anthropic_client(trained_server):
    client = anthropic.Anthropic(base_url=trained_server.base_url, api_key="unused",
                                 max_retries=0, timeout=120)
    yield client
    client.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    attach_logs(item, report, ("trained_server",))
    return report
