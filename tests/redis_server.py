"""A real redis-server for the response-store tests, on a free loopback port with a temp dir.

scripts/test.sh installs Debian's redis-server when it is missing; without the binary the tests
that need it skip with that reason. Fixtures: ``redis_server`` (one per session, emptied before
each test that takes ``redis_url``) and ``start_redis`` (a server of the test's own, for tests
that stop it).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.server_process import free_port

BINARY = "redis-server"


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self, timeout: float = 15.0) -> None:
        """Start (again, on the same port: a restart after ``stop``) and wait for PING."""
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n"
                                   + self.log()[-4000:])
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server not answering after {timeout:g} s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _start(directory: Path) -> RedisServer:
    if shutil.which(BINARY) is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it with apt-get "
                    "when run as root)")
    for attempt in range(3):  # a free port can be taken before redis-server binds it
        server = RedisServer(free_port(), directory)
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == 2 or "address already in use" not in server.log().lower():
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = _start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session's redis-server, emptied: each test starts from no stored responses."""
    if redis_server.process.poll() is not None:  # a test stopped it: bring it back
        redis_server.start()
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def start_redis(tmp_path):
    """start_redis() -> a RedisServer of this test's own (it may stop and restart it)."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        directory = tmp_path / f"redis-{len(started)}"
        directory.mkdir()
        server = _start(directory)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
