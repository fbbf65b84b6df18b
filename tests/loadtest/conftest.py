"""Fixtures for the load-test suite: the scripted server as a subprocess (tests/server_process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server_process import ROOT, ServerProcess, start_server


def _scripted_server(log_dir: Path, *extra: str) -> ServerProcess:
    return start_server(["--engine", "scripted", "--script",
                         str(ROOT / "examples" / "scripted-demo.jsonl"), "--log-level", "warning",
                         *extra], log_dir, model="gpt-oss-scripted", ready_timeout=60)


@pytest.fixture
def scripted_server(tmp_path_factory):
    server = _scripted_server(tmp_path_factory.mktemp("scripted"))
    yield server.base_url
    server.stop()


@pytest.fixture
def keyed_server(tmp_path_factory):
    server = _scripted_server(tmp_path_factory.mktemp("keyed"), "--api-key", "right-key")
    yield server.base_url
    server.stop()


def locust_available() -> bool:
    # find_spec, not import: importing locust monkey-patches the whole pytest process with gevent.
    import importlib.util

    return importlib.util.find_spec("locust") is not None


def run_locust(base: str, out: Path, *extra: str, seconds: int = 20, users: int = 8,
               timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"),
           "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", base,
           "--csv", str(out / "run"), "--html", str(out / "run.html"), "--only-summary",
           "--stop-timeout", "5", *extra]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
