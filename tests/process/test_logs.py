"""What a person or a log collector reads from the real `python -m server`: one log stream.

Each server here is started once, exercised, stopped with SIGTERM, and its whole output (stdout
and stderr, to a file: not a terminal) is checked afterwards: every line JSON (or every line
text with --log-format text, or at a terminal), vLLM's records among them, the story of the
states, no cache path for the model, no warning at shutdown. The scripted engine runs always;
the real engine (vLLM's CPU build, gpt-oss-tiny) is marked ``engine`` and skipped without vLLM.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.models.builtin import cache_dir
from tests.server_process import ROOT, ServerProcess, free_port, start_server

SCRIPT = ROOT / "examples" / "scripted-demo.jsonl"
KEY = "sk-logs-test-5e1d0c"
REQUEST_ID = "logs-test-request-1"
USER = [{"role": "user", "content": "Hello"}]
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) +"
                       r"[\w.]+: ")
SHUTDOWN_WARNINGS = ("resource_tracker", "leaked", "shared_memory", "Traceback")
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="needs vLLM (the CPU build)")


@dataclass
class Run:
    """A server's whole output, and what the test saw while it ran."""

    log: str
    exit_status: int
    seen: dict

    @property
    def lines(self) -> list[str]:
        return [line for line in self.log.splitlines() if line.strip()]

    def entries(self) -> list[dict]:
        """Every line as JSON; fails naming the lines that are not."""
        entries, not_json = [], []
        for line in self.lines:
            try:
                entry = json.loads(line)
            except ValueError:
                not_json.append(line)
                continue
            if isinstance(entry, dict):
                entries.append(entry)
            else:
                not_json.append(line)
        assert not not_json, "lines that are not JSON objects:\n" + "\n".join(not_json[:20])
        return entries


def stop(server: ServerProcess) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(60)
    finally:
        server.stop()


def states(entries: list[dict]) -> list[str]:
    return [entry["state"] for entry in entries if "state" in entry]


def check_common_fields(entries: list[dict]) -> None:
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", entry["time"]), entry
        assert entry["level"] in ("debug", "info", "warning", "error", "critical"), entry


def check_no_shutdown_warning(run: Run) -> None:
    for word in SHUTDOWN_WARNINGS:
        assert word not in run.log, [line for line in run.lines if word in line]


# -- the scripted engine ---------------------------------------------------------------------
def exercise(server: ServerProcess) -> dict:
    """Requests a newcomer sends, keyed by what they show."""
    url = server.base_url + "/v1/chat/completions"
    auth = {"Authorization": f"Bearer {KEY}"}
    body = json.dumps({"model": server.model, "messages": USER})
    seen = {
        # curl -d '{...}' without -H 'content-type: application/json'
        "form": httpx.post(url, content=body, headers={
            **auth, "content-type": "application/x-www-form-urlencoded",
            "x-request-id": REQUEST_ID}),
        "text_not_json": httpx.post(url, content="model=x&messages=y",
                                    headers={**auth, "content-type": "text/plain"}),
        "no_key": httpx.post(url, content=body, headers={"content-type": "application/json"}),
        "wrong_key": httpx.get(server.base_url + "/v1/models",
                               headers={"Authorization": "Bearer sk-wrong"}),
        "health": httpx.get(server.base_url + "/health"),
        "too_large": httpx.post(url, content=b"{" + b" " * 5000 + b"}", headers=auth),
    }
    for name, extra in {"stop": {"stop": ["a", "b", "c", "d", "e"]}, "n": {"n": 9},
                        "stop_chars": {"stop": ["x" * 300]},
                        "logit_bias": {"logit_bias": {str(i): 1 for i in range(301)}}}.items():
        seen[name] = httpx.post(url, json={"model": server.model, "messages": USER, **extra},
                                headers=auth)
    return seen


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> Run:
    server = start_server(["--engine", "scripted", "--script", str(SCRIPT), "--api-key", KEY,
                           "--max-request-bytes", "4096"],
                          tmp_path_factory.mktemp("scripted-logs"), model="gpt-oss-scripted",
                          ready_timeout=60)
    try:
        seen = exercise(server)
    finally:
        status = stop(server)
    return Run(server.log(), status, seen)


def test_every_line_is_json_with_the_same_fields(scripted):
    entries = scripted.entries()
    check_common_fields(entries)
    loggers = {entry["logger"] for entry in entries}
    assert {"uvicorn.error", "server.access", "server.lifecycle"} <= loggers, loggers
    request = [e for e in entries if e.get("request_id") == REQUEST_ID]
    assert request and request[0]["logger"] == "server.access" and request[0]["status"] == 200
    assert KEY not in scripted.log


def test_state_lines_tell_the_story(scripted):
    entries = scripted.entries()
    assert states(entries) == ["loading", "ready", "draining", "stopped"], states(entries)
    ready = next(e for e in entries if e.get("state") == "ready")
    assert ready["model"] == "gpt-oss-scripted" and ready["max_model_len"] == 131072
    assert ready["load_seconds"] >= 0 and "ready: serving gpt-oss-scripted" in ready["message"]
    stopped = next(e for e in entries if e.get("state") == "stopped")
    assert stopped["exit_status"] == 0 == scripted.exit_status
    # probes during loading and draining are not repeated at info level: the states say it
    assert not [e for e in entries if e.get("route") in ("/health", "/ready")
                and e["level"] != "debug"]


def test_a_json_body_sent_as_a_form_is_read_as_json(scripted):
    response = scripted.seen["form"]
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["role"] == "assistant"
    refused = scripted.seen["text_not_json"]
    assert refused.status_code == 400, refused.text
    assert "not valid JSON" in refused.json()["error"]["message"]


def test_401_says_how_to_authenticate(scripted):
    for name in ("no_key", "wrong_key"):
        response = scripted.seen[name]
        assert response.status_code == 401, (name, response.text)
        assert response.headers["www-authenticate"] == "Bearer", name
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert scripted.seen["health"].status_code == 200
    assert "www-authenticate" not in scripted.seen["health"].headers


@pytest.mark.parametrize("name,status,says", [
    ("too_large", 413, ["4096 bytes", "--max-request-bytes"]),
    ("stop", 400, ["5", "at most 4", "--max-stop-strings"]),
    ("stop_chars", 400, ["300 characters", "at most 256", "--max-stop-chars"]),
    ("n", 400, ["n is 9", "at most 8", "--max-n"]),
    ("logit_bias", 400, ["301 entries", "at most 300", "--max-logit-bias"]),
])
def test_limit_errors_name_the_limit_and_the_flag(scripted, name, status, says):
    response = scripted.seen[name]
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    for part in says:
        assert part in message, message


def test_shutdown_prints_no_warning(scripted):
    assert scripted.exit_status == 0
    check_no_shutdown_warning(scripted)


def one_request_and_stop(server: ServerProcess) -> int:
    response = httpx.post(server.base_url + "/v1/chat/completions",
                          json={"model": server.model, "messages": USER},
                          headers={"x-request-id": REQUEST_ID})
    assert response.status_code == 200, response.text
    return stop(server)


def check_text_lines(run: Run) -> None:
    assert run.exit_status == 0
    for line in run.lines:
        assert not line.startswith("{"), line
        assert TEXT_LINE.match(line), line
    assert any(f"request_id={REQUEST_ID}" in line and "server.access" in line
               for line in run.lines), run.log
    for state in ("loading", "ready", "draining", "stopped"):
        assert any(f"state={state}" in line for line in run.lines), (state, run.log)


def test_text_format(tmp_path):
    server = start_server(["--engine", "scripted", "--script", str(SCRIPT), "--log-format",
                           "text"], tmp_path, model="gpt-oss-scripted", ready_timeout=60)
    status = one_request_and_stop(server)
    check_text_lines(Run(server.log(), status, {}))


def test_auto_format_is_text_at_a_terminal(tmp_path):
    """stderr (and stdout) on a pseudo-terminal: --log-format auto writes text."""
    master, slave = pty.openpty()
    log_path = tmp_path / "tty.log"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--engine", "scripted", "--script", str(SCRIPT),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
        stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    reader = threading.Thread(target=_copy_pty, args=(master, log_path), daemon=True)
    reader.start()
    server = ServerProcess("gpt-oss-scripted", port, process, log_path)
    try:
        server.wait_ready(60)
        status = one_request_and_stop(server)
    finally:
        server.stop()
    reader.join(10)
    check_text_lines(Run(log_path.read_text(errors="replace").replace("\r", ""), status, {}))


def _copy_pty(master: int, path: Path) -> None:
    with path.open("wb") as out:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every process holding the terminal has exited
                break
            if not chunk:
                break
            out.write(chunk)
            out.flush()
    os.close(master)


# -- the real engine -------------------------------------------------------------------------
def engine_run(tmp_dir: Path, *flags: str) -> Run:
    from tests.engine.conftest import ENGINE_FLAGS, READY_TIMEOUT

    server = start_server(["--engine", "vllm", "--model", "gpt-oss-tiny", *ENGINE_FLAGS,
                           *flags], tmp_dir, model="gpt-oss-tiny", ready_timeout=READY_TIMEOUT)
    try:
        body = json.dumps({"model": "gpt-oss-tiny", "temperature": 0, "max_tokens": 64,
                           "messages": [{"role": "user", "content": "What is 7 plus 5?"}]})
        seen = {"form": httpx.post(server.base_url + "/v1/chat/completions", content=body,
                                   headers={"content-type": "application/x-www-form-urlencoded",
                                            "x-request-id": REQUEST_ID}, timeout=120),
                "metrics": httpx.get(server.base_url + "/metrics", timeout=30).text}
    finally:
        status = stop(server)
    return Run(server.log(), status, seen)


@pytest.fixture(scope="module")
def engine_json(tmp_path_factory) -> Run:
    return engine_run(tmp_path_factory.mktemp("engine-logs"))


def check_served_name(run: Run) -> None:
    for path in (str(cache_dir()), "/.cache/gpt-oss-server/models"):
        assert path not in run.log, [line for line in run.lines if path in line][:5]


@pytest.mark.engine
@needs_vllm
def test_real_engine_every_line_is_json_vllm_included(engine_json):
    entries = engine_json.entries()
    check_common_fields(entries)
    vllm = [e for e in entries if e["logger"].startswith("vllm.")]
    assert vllm, "no vLLM record"
    # records of vLLM's engine processes too, named by their process
    assert {e.get("process") for e in vllm} & {"EngineCore", "VLLM::Worker", "Worker"}, \
        {e.get("process") for e in vllm}
    assert engine_json.seen["form"].status_code == 200, engine_json.seen["form"].text
    assert any(e.get("request_id") == REQUEST_ID for e in entries)


@pytest.mark.engine
@needs_vllm
def test_real_engine_names_the_model_by_its_served_name(engine_json):
    check_served_name(engine_json)
    assert "served_model_name=gpt-oss-tiny" in engine_json.log
    series = [line for line in engine_json.seen["metrics"].splitlines()
              if line.startswith("vllm:") and "model_name=" in line]
    assert series and all('model_name="gpt-oss-tiny"' in line for line in series), series[:3]


@pytest.mark.engine
@needs_vllm
def test_real_engine_states_and_quiet_shutdown(engine_json):
    entries = engine_json.entries()
    assert states(entries) == ["loading", "ready", "draining", "stopped"], states(entries)
    ready = next(e for e in entries if e.get("state") == "ready")
    assert ready["model"] == "gpt-oss-tiny" and ready["max_model_len"] == 4096
    assert 0 < ready["load_seconds"] < 600
    assert engine_json.exit_status == 0
    check_no_shutdown_warning(engine_json)
    # the CPU build's known start-up noise is not repeated at info level
    assert "Triton is installed" not in engine_json.log


@pytest.mark.engine
@needs_vllm
def test_real_engine_text_format(tmp_path):
    run = engine_run(tmp_path, "--log-format", "text")
    check_text_lines(run)
    assert any(" vllm." in line and "process=" in line for line in run.lines), run.log[-3000:]
    check_served_name(run)
    check_no_shutdown_warning(run)
