"""The benchmark's processes and load generator: servers as subprocesses whose own CPU time is
accounted, and a minimal asyncio HTTP/1.1 streaming client (it parses frames only up to the first
token, so it spends little CPU per token beside the server it measures); a body with ``stream``
false is sent and read as one JSON answer."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from loadtest.surfaces import CHAT, Surface

ROOT = Path(__file__).resolve().parents[1]
# Servers are started in their own process group (so that a Ctrl-C at the terminal is not sent to
# them, and killpg stops an engine's processes with them) but in the caller's session. Linux's
# autogroup schedules each session as one group: on the 6.18 kernels of our 2-core CI machines, a
# vLLM server in a session of its own (its engine core and worker each spinning on a core) starved
# the caller for over a minute at a time (a 0.2 s sleep woke 85 s late; the kernel logged
# "workqueue lockup"), so deadlines ran out while the test or load generator never got to look.
# In one session the same run showed no delay over 0.1 s.
SAME_SESSION = {"process_group": 0}


# ---------------------------------------------------------------------------------------------
# Processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_clock(pid: int) -> int | None:
    """The clock of another process's CPU time, all its threads (``clock_getcpuclockid``), or
    None where there is none. It reads in nanoseconds: ``/proc/PID/stat`` (psutil) counts in
    ticks of 10 ms, and a batch of the benchmark's trained workload costs the server 0.1-0.2 s,
    so a tick is 5-10% of the figure."""
    clock = ctypes.c_int()
    try:
        failed = ctypes.CDLL(None).clock_getcpuclockid(pid, ctypes.byref(clock))
    except (OSError, AttributeError):
        return None
    return None if failed else clock.value


class Proc:
    """A server subprocess on 127.0.0.1 whose own CPU time (not its children's) we account."""

    def __init__(self, cmd: list[str], port: int, log_path: Path, env: dict | None = None,
                 ready_path: str = "/v1/models", timeout: float = 240) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "wb")
        self.popen = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **(env or {})}, **SAME_SESSION)
        self.ps = psutil.Process(self.popen.pid)
        self.cpu_clock = process_cpu_clock(self.popen.pid)
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited {self.popen.returncode}; see {log_path}")
            try:
                if httpx.get(self.base + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{cmd[:4]} not ready after {timeout:.0f} s; see {log_path}")
            time.sleep(0.5)

    def cpu(self) -> float:
        if self.cpu_clock is not None:
            return time.clock_gettime(self.cpu_clock)
        t = self.ps.cpu_times()
        return t.user + t.system

    def model(self) -> str:
        return httpx.get(self.base + "/v1/models", timeout=10).json()["data"][0]["id"]

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------
# Load: a small async streaming client

@dataclass
class Batch:
    requests: int = 0
    failures: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    ttft_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _request(host: str, port: int, body: dict, surface: Surface) -> bytes:
    """The request's bytes: the same for every request of a worker, so built once."""
    payload = json.dumps(body).encode()
    return (f"POST {surface.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            ).encode() + payload


async def _streamed(conn, request: bytes, batch: Batch, surface: Surface) -> int:
    """One streamed request on a kept-alive HTTP/1.1 connection; its output tokens.

    Deliberately minimal so that the load generator spends little CPU per token: it parses SSE
    frames only until the first token (for TTFT) and then only scans the bytes for the end of the
    chunked body, the surface's last frame and its usage. Connections are reused like any
    pooling client (the openai SDK) does, so per-connection set-up is not counted per request.
    """
    reader, writer = conn
    start = time.perf_counter()
    first = None
    writer.write(request)
    early = b""
    tail = b""
    status_ok = False
    while True:
        data = await reader.read(262144)
        if not data:
            raise RuntimeError("the server closed the connection")
        if first is None:
            early += data
            if not status_ok:
                if b"\r\n\r\n" not in early:
                    continue
                if not early.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(early[:300].decode(errors="replace"))
                status_ok = True
            *lines, rest = early.split(b"\n")
            for line in lines:
                if line.startswith(b"data: {"):
                    if line.startswith(b'data: {"error"'):
                        raise RuntimeError(f"error frame {line[:300]!r}")
                    if surface.first_token(line):
                        first = time.perf_counter()
                        break
            early = rest if first is None else b""
        tail = (tail + data)[-16384:]
        if tail.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of the chunked body
            break
    if not surface.done(tail):
        raise RuntimeError(f"stream ended without its last frame: {tail[-300:]!r}")
    if b'"error"' in tail and b'"error":null' not in tail:
        raise RuntimeError(f"error frame: {tail[-300:]!r}")
    tokens = surface.tokens(tail)
    if tokens is None:
        raise RuntimeError("no usage in the stream")
    if first is not None:
        batch.ttft_ms.append((first - start) * 1000)
    return tokens


async def _whole(conn, request: bytes, batch: Batch, surface: Surface) -> int:
    """One request with ``stream: false``: the whole answer in one response, so the same
    request's cost without a frame per token; its output tokens, from the usage."""
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:300].decode(errors="replace"))
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if length is None:
        raise RuntimeError("no content-length in the response")
    answer = await reader.readexactly(int(length[1]))
    tokens = surface.tokens(answer)  # the same usage field as the stream's last frame
    if tokens is None:
        raise RuntimeError(f"no usage in the answer: {answer[:300]!r}")
    return tokens


async def _worker(host: str, port: int, body: dict, batch: Batch, queue: list,
                  surface: Surface) -> None:
    one = _streamed if body.get("stream") else _whole
    request = _request(host, port, body, surface)
    conn = None
    try:
        while queue:
            queue.pop()
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                tokens = await one(conn, request, batch, surface)
                batch.tokens += tokens  # not `+= await`: that reads the sum before awaiting
            except Exception as exc:  # noqa: BLE001 - counted; the next request reconnects
                batch.failures += 1
                if len(batch.errors) < 5:
                    batch.errors.append(repr(exc)[:300])
                if conn is not None:
                    conn[1].close()
                    conn = None
            finally:
                batch.requests += 1
    finally:
        if conn is not None:
            conn[1].close()


async def _batch(body: dict, n: int, concurrency: int, proc: Proc, surface: Surface) -> Batch:
    batch = Batch()
    host, port = "127.0.0.1", proc.port
    # Warm-up outside the measurement.
    warm = list(range(min(concurrency, 32)))
    await asyncio.gather(*(_worker(host, port, surface.body(body["model"], 4), Batch(), warm,
                                   surface) for _ in range(len(warm))))
    queue = list(range(n))
    cpu0, t0 = proc.cpu(), time.perf_counter()
    await asyncio.gather(*(_worker(host, port, body, batch, queue, surface)
                           for _ in range(concurrency)))
    batch.wall_s = time.perf_counter() - t0
    batch.cpu_s = proc.cpu() - cpu0
    return batch


def median_batch(batches: list[Batch]) -> Batch:
    """The median batch by server CPU per token (a batch with no tokens counts as the worst):
    on shared cores one batch can be off by 1.5-2x."""
    return sorted(batches, key=lambda b: b.cpu_s / b.tokens if b.tokens else float("inf")
                  )[len(batches) // 2]


def run_batch(body: dict, n: int, concurrency: int, proc: Proc,
              surface: Surface = CHAT) -> Batch:
    return run_on_uvloop(_batch(body, n, concurrency, proc, surface))


def run_on_uvloop(coroutine):
    """Run ``coroutine`` on uvloop, the loop uvicorn and vLLM's server use, when installed."""
    try:
        import uvloop  # noqa: PLC0415
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(coroutine)
