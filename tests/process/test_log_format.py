"""The pieces of the one log stream (server/logs.py, server/lifecycle.py), without a server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from server.config import Settings
from server.lifecycle import Lifecycle
from server.log_capture import record_from_line
from server.logs import JSONFormatter, KnownNoise, TextFormatter
from tests.server_process import ROOT

CHILD = """
import os, subprocess, sys, warnings
from server.logs import configure_logging
configure_logging("info", ["sk-secret-1234"], {fmt!r})
os.write(2, b"[W1202 01:53:15.736 utils.cpp:68] Warning: a C++ warning\\n")
os.write(1, b"a line on stdout\\n")
warnings.warn("a Python warning")
subprocess.run([sys.executable, "-c", "import sys; print('from a child'); "
                "sys.stderr.write('Traceback (most recent call last):\\\\n  boom\\\\n')"])
import logging
logging.getLogger("server").info("key sk-secret-1234 is not shown", extra={{"request_id": "r1"}})
"""


def run_child(fmt: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", CHILD.format(fmt=fmt)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "", result.stdout  # stdout too ends up in the log stream
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_everything_written_to_1_and_2_becomes_a_json_record():
    entries = [json.loads(line) for line in run_child("json")]
    by_message = {entry["message"]: entry for entry in entries}
    assert by_message["[W1202 01:53:15.736 utils.cpp:68] Warning: a C++ warning"]["level"] == \
        "warning"
    assert by_message["a line on stdout"]["logger"] == "output"
    assert by_message["from a child"]["logger"] == "output"
    traceback = next(e for e in entries if e["message"].startswith("Traceback"))
    assert traceback["level"] == "error" and "boom" in traceback["message"]  # one record
    assert any(e["logger"] == "py.warnings" and "a Python warning" in e["message"]
               for e in entries)
    secret = next(e for e in entries if e["logger"] == "server")
    assert secret["message"] == "key [REDACTED] is not shown" and secret["request_id"] == "r1"


def test_text_lines_carry_time_level_and_logger():
    lines = run_child("text")
    assert all(" INFO " in line or " WARNING " in line or " ERROR " in line for line in lines)
    assert any("output: a line on stdout" in line for line in lines)
    assert any("server: key [REDACTED] is not shown request_id=r1" in line for line in lines)
    assert not any(line.startswith("{") for line in lines)


def record(name: str, message: str, level: int = logging.WARNING, **extra) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, message, (), None)
    rec.__dict__.update(extra)
    return rec


def test_a_record_from_an_engine_process_keeps_its_fields():
    sent = record("vllm.v1.engine.core", "init engine took 1.2 s", logging.INFO,
                  request_id="r7")
    sent.processName = "EngineCore"
    line = JSONFormatter().format(sent)
    back = record_from_line(json.loads(line))
    assert back.name == "vllm.v1.engine.core" and back.levelno == logging.INFO
    assert back.getMessage() == "init engine took 1.2 s" and back.request_id == "r7"
    assert json.loads(JSONFormatter().format(back)) == json.loads(line)
    text = TextFormatter().format(back)
    assert " INFO    vllm.v1.engine.core: init engine took 1.2 s " in text
    assert "process=EngineCore" in text and "request_id=r7" in text


def test_known_noise_is_demoted_to_debug_and_the_rest_kept():
    noise = KnownNoise(logging.INFO)
    known = record("vllm.platforms.cpu", "Triton is not installed. triton-cpu is expected on x86")
    assert not noise.filter(known) and known.levelname == "DEBUG"
    assert KnownNoise(logging.DEBUG).filter(record("vllm.platforms.cpu",
                                                   "Triton is not installed. triton-cpu"))
    other = record("vllm.platforms.cpu", "something else")
    assert noise.filter(other) and other.levelname == "WARNING"


def test_a_dead_engine_is_one_state_line(caplog):
    reasons = []
    lifecycle = Lifecycle(Settings(engine="scripted", script="x.jsonl"), reasons.append,
                          lambda: None, lambda: True)
    with caplog.at_level(logging.INFO, logger="server.lifecycle"):
        lifecycle.mark_loading()
        lifecycle.mark_ready(4096)
        lifecycle.live()  # the engine is dead: fatal, once
        lifecycle.live()
    states = [(r.state, r.levelname) for r in caplog.records if hasattr(r, "state")]
    assert states == [("loading", "INFO"), ("ready", "INFO"), ("dead", "ERROR")]
    assert reasons == ["the engine died"]
