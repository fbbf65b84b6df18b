"""Shared fixtures: a real uvicorn server in a thread around an injected scripted engine."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass

import httpx
import openai
import pytest
import uvicorn

from server.app import create_app
from server.config import Settings
from server.engine.scripted import ScriptedEngine
from server.harmony.encoding import load_harmony
from tests.corpus import COMPLETIONS

MODEL = "gpt-oss-scripted"


@pytest.fixture(scope="session")
def harmony():
    return load_harmony()


@dataclass
class LiveServer:
    url: str
    engine: ScriptedEngine
    app: object
    settings: Settings
    key: str | None

    def client(self, **kwargs) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.key or "unused",
                             max_retries=0, **kwargs)

    def async_client(self, **kwargs) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=self.key or "unused",
                                  max_retries=0, **kwargs)

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def open_request(self, body: dict, path: str = "/v1/chat/completions") -> socket.socket:
        """POST ``body`` on a raw socket and return the socket unread: the test decides when the
        client goes away (``close()``), rather than a client timeout racing the server."""
        host, port = self.url.removeprefix("http://").split(":")
        payload = json.dumps(body).encode()
        auth = f"Authorization: Bearer {self.key}\r\n" if self.key else ""
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}"
                     f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                     .encode() + payload)
        return sock


def wait_for(condition, timeout: float = 10.0, what: str = "the condition",
             interval: float = 0.02):
    """Poll ``condition()`` (at least once) until it returns something truthy and return that;
    fail after ``timeout`` seconds. Deadlines are generous: CI runs on 2 busy cores."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class _Thread(threading.Thread):
    def __init__(self, server: uvicorn.Server, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.sock = sock

    def run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))


@pytest.fixture
def serve(harmony):
    """serve(completions=[...], chunk_size=1, token_delay=0, loaded=None, **settings) ->
    LiveServer, ready unless ``loaded`` (a threading.Event) holds the engine loading."""
    started: list[tuple[uvicorn.Server, _Thread]] = []

    def start(completions: list[str] | None = None, *, chunk_size: int = 1,
              token_delay: float = 0.0, max_model_len: int = 131072,
              loaded: threading.Event | None = None, **overrides) -> LiveServer:
        completions = completions or [COMPLETIONS["plain"]]
        values = {"engine": "scripted", "script": "unused.jsonl", "harmony_date": "2026-01-01",
                  **overrides}
        settings = Settings(**values, served_model_name=[MODEL])
        engine = ScriptedEngine(harmony, completions, chunk_size=chunk_size,
                                token_delay=token_delay, max_model_len=max_model_len)
        if loaded is not None:  # the engine "loads" until the test sets the event
            start_engine = engine.start

            async def start_when_set() -> None:
                while not loaded.is_set():
                    await asyncio.sleep(0.01)
                await start_engine()

            engine.start = start_when_set
        app = create_app(settings, engine, harmony=harmony)
        # bound here and handed to uvicorn: no other process can take the port in between.
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so
        # (without it every request waits ~40 ms on Nagle and delayed ACKs)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # timeout_graceful_shutdown: a request still open at teardown cannot keep the thread
        # (and the process-wide metrics it updates) alive into the next test
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_config=None, access_log=False,
                                               timeout_graceful_shutdown=5))
        thread = _Thread(server, sock)
        thread.start()
        started.append((server, thread))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/ready").status_code
                if status == 200 or (loaded is not None and not loaded.is_set()):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError("test server did not become ready")
        keys = settings.api_key
        return LiveServer(f"http://127.0.0.1:{port}", engine, app, settings,
                          keys[0] if keys else None)

    yield start
    for server, _ in started:
        server.should_exit = True
    for _, thread in started:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a test server did not shut down within 30 s"

from tests.redis_server import redis_server, redis_url, start_redis  # noqa: E402,F401 - fixtures
