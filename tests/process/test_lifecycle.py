"""The real `python -m server` process: drain on SIGTERM, log hygiene, offline vocabulary errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.corpus import COMPLETIONS
from tests.server_process import start_server

SECRET_KEY = "sk-test-4f9c1e7b2d"
PROMPT_MARKER = "zebra-umbrella-7731"


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str, Path]:
    script = tmp_path / "script.jsonl"
    script.write_text(json.dumps({"completion": COMPLETIONS["long"]}) + "\n")
    server = start_server(["--engine", "scripted", "--script", str(script), *args], tmp_path,
                          model="gpt-oss-scripted", ready_timeout=30)
    return server.process, server.base_url, server.log_path


def test_sigterm_drains_in_flight_stream_then_exits_zero(tmp_path):
    # 132 tokens x 0.05 s: the stream outlasts the checks below by seconds, even on a busy machine
    process, url, log = start(tmp_path, "--script-token-delay", "0.05", "--drain-timeout", "20",
                              "--api-key", SECRET_KEY)
    headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    body = {"model": "gpt-oss-scripted", "stream": True,
            "messages": [{"role": "user", "content": PROMPT_MARKER}]}
    try:
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=headers,
                          timeout=30) as response:
            lines = response.iter_lines()
            next(lines)
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            assert httpx.get(url + "/ready").status_code == 503
            late = httpx.post(url + "/v1/chat/completions", json={**body, "stream": False},
                              headers=headers)
            assert late.status_code == 503 and late.json()["error"]["code"] == "server_draining"
            rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]" and not any('"error"' in line for line in rest)
        assert '"finish_reason":"stop"' in "".join(rest)
        assert process.wait(timeout=25) == 0
        assert time.monotonic() - sent < 20 + 5
    finally:
        process.kill()
    text = log.read_text()
    assert SECRET_KEY not in text and PROMPT_MARKER not in text
    assert all(isinstance(json.loads(line), dict) for line in text.splitlines() if line.strip())


def test_drain_timeout_aborts_the_rest_with_an_error_frame(tmp_path):
    process, url, _ = start(tmp_path, "--script-token-delay", "0.2", "--drain-timeout", "1")
    body = {"model": "gpt-oss-scripted", "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}
    try:
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
            lines = response.iter_lines()
            next(lines)
            process.send_signal(signal.SIGTERM)
            rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]" and '"error"' in rest[-2]
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()


def test_bad_vocabulary_exits_nonzero_within_seconds(tmp_path):
    (tmp_path / "o200k_base.tiktoken").write_text("not the vocabulary")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "server", "--engine", "scripted", "--script", "x.jsonl"],
        env={**os.environ, "TIKTOKEN_ENCODINGS_BASE": str(tmp_path)},
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and time.monotonic() - started < 30
    assert "SHA-256" in result.stderr


@pytest.mark.parametrize("content,says", [
    (None, "cannot read"), ("", "no completions"), ("not json\n", ":1: not JSON"),
    ('{"text": "x"}\n', "string field 'completion'")])
def test_bad_script_exits_2_with_a_clear_error(tmp_path, content, says):
    script = tmp_path / "script.jsonl"
    if content is not None:
        script.write_text(content)
    result = subprocess.run([sys.executable, "-m", "server", "--engine", "scripted",
                             "--script", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", ["--help"])
def test_help_documents_the_flags(flag):
    result = subprocess.run([sys.executable, "-m", "server", flag], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    for name in ("--host", "--port", "--served-model-name", "--api-key", "--max-model-len",
                 "--engine", "--script", "--script-chunk-size", "--script-token-delay",
                 "--reasoning-effort", "--reasoning-field", "--harmony-date", "GPT_OSS_"):
        assert name in result.stdout
