"""Engine death: SIGKILL the EngineCore process mid-stream (its own server: it kills it)."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.engine.conftest import start_server
from tests.engine.helpers import CHATTY_BIAS, MESSAGES, sse_lines

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server("gpt-oss-tiny-random", tmp_path_factory.mktemp("death"))
    yield server
    server.stop()


def test_engine_core_sigkill_mid_stream(server):
    body = {"model": server.model, "messages": MESSAGES, "max_tokens": 3000, "stream": True,
            "logit_bias": CHATTY_BIAS}
    core = server.engine_core()
    frames = []
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            for frame in sse_lines(response):
                frames.append(frame)
                if len(frames) == 4:
                    core.send_signal(signal.SIGKILL)
                    killed_at = time.monotonic()
    assert frames[-1] == "[DONE]"
    assert isinstance(frames[-2], dict) and "error" in frames[-2], frames[-3:]
    # /health turns 503 once the app's engine watcher sees the death (it polls), until the
    # process exits (then the connection is refused)
    statuses = []
    while time.monotonic() - killed_at < 5:
        try:
            statuses.append(httpx.get(server.base_url + "/health", timeout=2).status_code)
        except httpx.TransportError:
            statuses.append("refused")
        if statuses[-1] != 200:
            break
        time.sleep(0.05)
    assert statuses[-1] in (503, "refused"), statuses
    remaining = 10 - (time.monotonic() - killed_at)
    code = server.process.wait(max(remaining, 0.1))
    assert code != 0
