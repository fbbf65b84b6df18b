"""Fixtures: the real server (``python -m server --engine vllm``) on the tiny models, as a process.

Each server starts once per module (engine start on 2 cores: about 20-60 s) and is always killed
in teardown, engine processes included. Its log goes to a temporary file, printed when a test of
the module fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = float(os.environ.get("GPT_OSS_TEST_READY_TIMEOUT", "240"))
# Tests pass --enforce-eager (a vLLM engine flag, through our parser): no torch.compile warm-up.
ENGINE_FLAGS = ["--enforce-eager", "--max-num-seqs", "32"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    model: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url + "/v1", api_key="unused", max_retries=0,
                             timeout=120, **kwargs)

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url + "/v1", api_key="unused",
                                  max_retries=0, timeout=120)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} before ready:\n"
                                   + self.log()[-8000:])
            try:
                if httpx.get(self.base_url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n" + self.log()[-8000:])

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
        for child in children:  # engine processes left behind, if any
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(children, timeout=5)

    def engine_core(self) -> psutil.Process:
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                text = child.name() + " " + " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "EngineCore" in text:
                return child
        raise AssertionError("no EngineCore child process found")


def start_server(model: str, tmp_dir: Path, *extra: str) -> ServerProcess:
    port = free_port()
    log_path = tmp_dir / f"server-{model}-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "server", "--engine", "vllm", "--model", model,
               "--host", "127.0.0.1", "--port", str(port), *ENGINE_FLAGS, *extra]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = ServerProcess(model, port, process, log_path)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for name in ("bf16_server", "mxfp4_server", "server"):
            server = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(server, ServerProcess):
                report.sections.append((f"server log ({server.model})", server.log()[-20000:]))
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
