"""Fixtures for the load-test suite: the scripted server as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*extra: str, script: Path | None = None) -> tuple[subprocess.Popen, str]:
    for attempt in range(3):
        try:
            return _start_server(extra, script)
        except RuntimeError as exc:  # the picked port was taken before the server bound it
            if attempt == 2 or "address already in use" not in str(exc).lower():
                raise
    raise AssertionError("unreachable")


def _start_server(extra: tuple[str, ...], script: Path | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "server", "--engine", "scripted",
           "--script", str(script or ROOT / "examples" / "scripted-demo.jsonl"),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(base + "/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready in 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def scripted_server():
    proc, base = start_server()
    yield base
    stop_server(proc)


@pytest.fixture
def keyed_server():
    proc, base = start_server("--api-key", "right-key")
    yield base
    stop_server(proc)


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
