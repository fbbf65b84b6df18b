"""Shared fixtures: a real uvicorn server in a thread around an injected scripted engine."""

from __future__ import annotations

import asyncio
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
from tests.server_process import free_port

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


class _Thread(threading.Thread):
    def __init__(self, server: uvicorn.Server) -> None:
        super().__init__(daemon=True)
        self.server = server

    def run(self) -> None:
        asyncio.run(self.server.serve())


@pytest.fixture
def serve(harmony):
    """serve(completions=[...], chunk_size=1, token_delay=0, **settings) -> LiveServer."""
    started: list[tuple[uvicorn.Server, _Thread]] = []

    def start(completions: list[str] | None = None, *, chunk_size: int = 1,
              token_delay: float = 0.0, max_model_len: int = 131072, **overrides) -> LiveServer:
        completions = completions or [COMPLETIONS["plain"]]
        values = {"engine": "scripted", "script": "unused.jsonl", "harmony_date": "2026-01-01",
                  **overrides}
        settings = Settings(**values, served_model_name=[MODEL])
        engine = ScriptedEngine(harmony, completions, chunk_size=chunk_size,
                                token_delay=token_delay, max_model_len=max_model_len)
        app = create_app(settings, engine, harmony=harmony)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_config=None, access_log=False))
        thread = _Thread(server)
        thread.start()
        started.append((server, thread))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
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
    for server, thread in started:
        server.should_exit = True
        thread.join(timeout=10)
