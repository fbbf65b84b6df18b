"""checkov on every rendered scenario and on Dockerfile.cuda: no failed check, and every skipped
check carries its reason (.checkov.yaml comments, or checkov.io/skip annotations on the one
resource concerned)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHECKOV_CONFIG, DOCKERFILE, SCENARIOS


def _checkov(*args: str) -> list[dict]:
    beside = Path(sys.executable).with_name("checkov")
    command = [str(beside)] if beside.exists() else [sys.executable, "-m", "checkov.main"]
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    env.pop("BC_API_KEY", None)  # never talk to a platform: local policies only
    result = subprocess.run(
        [*command, "--config-file", str(CHECKOV_CONFIG), "--output", "json", *args],
        capture_output=True, text=True, timeout=240, env=env, check=False,
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module")
def chart_report(rendered_scenarios, tmp_path_factory) -> list[dict]:
    """One checkov run over every scenario, each rendered into its own directory."""
    root = tmp_path_factory.mktemp("rendered")
    for scenario, rendered in rendered_scenarios.items():
        directory = root / scenario
        directory.mkdir()
        for path, text in rendered.templates.items():
            if path.endswith(".yaml") and text.strip():
                (directory / path.replace("/", "__")).write_text(text)
    return _checkov("--directory", str(root), "--framework", "kubernetes")


@pytest.fixture(scope="module")
def dockerfile_report() -> list[dict]:
    return _checkov("--file", str(DOCKERFILE), "--framework", "dockerfile")


def _results(report: list[dict], kind: str) -> list[dict]:
    return [check for framework in report for check in framework.get("results", {}).get(kind, [])]


def _describe(check: dict) -> str:
    return f"{check['check_id']} {check['check_name']} -> {check['resource']} ({check['file_path']})"


def test_rendered_chart_has_no_failed_check(chart_report):
    failed = _results(chart_report, "failed_checks")
    assert not failed, "\n".join(_describe(c) for c in failed)


def test_chart_scan_covered_every_scenario(chart_report):
    passed = _results(chart_report, "passed_checks")
    scanned = {Path(c["file_path"]).parts[1] for c in passed if "Deployment" in c["resource"]}
    assert scanned == set(SCENARIOS)
    assert len(passed) > 100


# The only resources that carry checkov.io/skip annotations, and the checks each may skip.
ALLOWED_RESOURCE_SKIPS = {
    # the `helm test` pod: a one-shot client that serves nothing
    "Pod.gpt-oss.demo-gpt-oss-server-test-models": {"CKV_K8S_8", "CKV_K8S_9", "CKV2_K8S_6"},
    # the endpoint picker needs its service account token (it watches the pool and its pods)
    "Deployment.gpt-oss.demo-gpt-oss-server-epp": {"CKV_K8S_38"},
    # the Redis password reaches the server as an env var from a secretKeyRef
    "Deployment.gpt-oss.demo-gpt-oss-server": {"CKV_K8S_35"},
}


def test_chart_skips_are_justified_on_the_resource(chart_report):
    skipped = _results(chart_report, "skipped_checks")
    for check in skipped:
        allowed = ALLOWED_RESOURCE_SKIPS.get(check["resource"], set())
        assert check["check_id"] in allowed, _describe(check)
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(comment) > 20, f"no reason given for {_describe(check)}"
    # The server's CKV_K8S_35 skip exists only where a Redis password Secret is configured.
    env_skips = {Path(c["file_path"]).parts[1] for c in skipped if c["check_id"] == "CKV_K8S_35"}
    assert env_skips == {"redis-response-store"}


def test_dockerfile_has_no_failed_check(dockerfile_report):
    failed = _results(dockerfile_report, "failed_checks")
    assert not failed, "\n".join(_describe(c) for c in failed)
    passed = {c["check_id"] for c in _results(dockerfile_report, "passed_checks")}
    # The checks that matter most for this image did run and pass.
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3", "CKV_DOCKER_7"} <= passed
    assert not _results(dockerfile_report, "skipped_checks")


def test_every_global_skip_has_a_reason():
    lines = CHECKOV_CONFIG.read_text().splitlines()
    start = lines.index("skip-check:")
    for number, line in enumerate(lines[start + 1:], start + 1):
        match = re.match(r"\s*-\s*(CKV\w+)", line)
        if not match:
            continue
        above = lines[number - 1].strip()
        assert above.startswith("#"), f"{match.group(1)} is skipped without a reason"
        reason = []
        for previous in reversed(lines[start + 1:number]):
            if not previous.strip().startswith("#"):
                break
            reason.append(previous)
        assert match.group(1) in " ".join(reason), f"the comment above {match.group(1)} names it"
