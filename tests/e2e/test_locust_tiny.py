"""The locust suite against the trained gpt-oss-tiny on the real engine (``--prompt-set tiny``):
no failures, and its figures hold real Harmony structure: reasoning, content and tool calls."""

from __future__ import annotations

import csv

import pytest

from tests.loadtest.conftest import locust_available, run_locust

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(not locust_available(), reason="locust is not installed (test extra)")]


def test_locust_run_has_reasoning_content_and_tool_calls(trained_server, tmp_path):
    # --seed 0: the first requests drawn are tool prompts (6 of the 17), so a slow run with few
    # requests still has tool calls rather than missing them by chance
    result = run_locust(trained_server.base_url, tmp_path, "--prompt-set", "tiny",
                        "--max-failure-ratio", "0", "--max-tokens", "128", "--reasoning-effort-mix",
                        "low:1,medium:1,high:1", "--seed", "0", seconds=20, users=4)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(tmp_path / "run_stats.csv", newline="") as f:
        stats = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
    assert all(int(r["Failure Count"]) == 0 for r in stats.values())
    assert int(stats[("POST", "/v1/chat/completions [stream]")]["Request Count"]) > 0

    def largest(name: str) -> float:  # the "ms" columns of a count row hold the count
        return float(stats[("LLM", name)]["Max Response Time"])

    assert largest("reasoning_tokens") > 0
    assert largest("content_tokens") > 0
    assert largest("tool_calls") >= 1
