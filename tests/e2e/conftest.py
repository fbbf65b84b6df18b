"""The real server on the trained gpt-oss-tiny: ``python -m server --engine vllm --model gpt-oss-tiny``.

Started once per session with no flag other than host and port (the CPU engine settings are the
built-in name's defaults), waited for on GET /ready, and killed in teardown with its engine
processes. Its log is attached to failing tests' reports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = float(os.environ.get("GPT_OSS_TEST_READY_TIMEOUT", "120"))


class TrainedServer:
    def __init__(self, log_path: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log_path = log_path
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server", "--engine", "vllm", "--model", "gpt-oss-tiny",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url + "/v1", api_key="unused", max_retries=0,
                             timeout=120)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n"
                                   + self.log()[-8000:])
            try:
                if httpx.get(self.base_url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready after {READY_TIMEOUT:.0f} s:\n" + self.log()[-8000:])

    def stop(self) -> None:
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(children, timeout=5)


@pytest.fixture(scope="session")
def trained_server(tmp_path_factory):
    server = TrainedServer(tmp_path_factory.mktemp("gpt-oss-tiny") / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def client(trained_server):
    return trained_server.client()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        server = getattr(item, "funcargs", {}).get("trained_server")
        if isinstance(server, TrainedServer):
            report.sections.append(("server log (gpt-oss-tiny)", server.log()[-20000:]))
    return report
