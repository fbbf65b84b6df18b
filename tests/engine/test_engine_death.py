"""Engine death: SIGKILL the EngineCore process mid-stream (its own server: it kills it)."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.conftest import wait_for
from tests.engine.conftest import start_server
from tests.engine.helpers import CHATTY_BIAS, LONG_STREAM_TOKENS, MESSAGES, sse_lines

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server("gpt-oss-tiny-random", tmp_path_factory.mktemp("death"),
                          long_context=True)
    yield server
    server.stop()


def test_engine_core_sigkill_mid_stream(server):
    body = {"model": server.model, "messages": MESSAGES, "max_tokens": LONG_STREAM_TOKENS,
            "stream": True, "logit_bias": CHATTY_BIAS}
    core = server.engine_core()
    frames = []
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            for frame in sse_lines(response):
                frames.append(frame)
                if len(frames) == 4:
                    core.send_signal(signal.SIGKILL)
    assert frames[-1] == "[DONE]"
    assert isinstance(frames[-2], dict) and "error" in frames[-2], frames[-3:]
    # /health turns 503 once the app's engine watcher sees the death (it polls), until the
    # process exits (then the connection is refused). Probed at least once, from the end of
    # the stream; the deadlines only stop a server that never notices.
    statuses = []

    def unhealthy() -> bool:
        try:
            statuses.append(httpx.get(server.base_url + "/health", timeout=5).status_code)
        except httpx.TransportError:
            statuses.append("refused")
        return statuses[-1] != 200

    wait_for(unhealthy, timeout=30, interval=0.05, what="/health to fail")
    assert statuses[-1] in (503, "refused"), statuses
    code = server.process.wait(60)
    assert code != 0
    # it exited because it saw the engine die (not for some other reason)
    assert "fatal: the engine died" in server.log()
