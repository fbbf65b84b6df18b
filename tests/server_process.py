"""`python -m server` as a real process on 127.0.0.1, for the engine, e2e and process tests.

The server runs in its own session, so teardown can end it and every engine process it started;
its output goes to a log file that failing tests attach to their report.
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

from loadtest.client import SAME_SESSION

ROOT = Path(__file__).resolve().parents[1]


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

    def wait_ready(self, timeout: float) -> None:
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
            time.sleep(0.2)
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


def start_server(args: list[str], log_dir: Path, *, model: str, ready_timeout: float,
                 env: dict | None = None) -> ServerProcess:
    """Start `python -m server ARGS --host 127.0.0.1 --port P` and wait for /ready.

    P is free when picked but only bound by the server a moment later; if another process took
    it meanwhile (vLLM picks free ports for its own sockets too), start again on a new one."""
    for attempt in range(3):
        port = free_port()
        log_path = log_dir / f"server-{port}.log"
        command = [sys.executable, "-m", "server", *args, "--host", "127.0.0.1", "--port", str(port)]
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdout=log_file, stderr=subprocess.STDOUT, **SAME_SESSION)
        server = ServerProcess(model, port, process, log_path)
        try:
            server.wait_ready(ready_timeout)
            return server
        except RuntimeError:
            server.stop()
            if attempt == 2 or "address already in use" not in server.log().lower():
                raise
        except BaseException:
            server.stop()
            raise
    raise AssertionError("unreachable")


def attach_logs(item, report, names: tuple[str, ...]) -> None:
    """Add the logs of the named ServerProcess fixtures to a failed test's report."""
    if not report.failed:
        return
    for name in names:
        server = getattr(item, "funcargs", {}).get(name)
        if isinstance(server, ServerProcess):
            report.sections.append((f"server log ({server.model})", server.log()[-20000:]))
