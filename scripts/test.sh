#!/usr/bin/env bash
# Set up everything from scratch and run all tests (the command CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
.venv/bin/python -m ruff check server tests loadtest || status=$?
.venv/bin/python -m pytest tests --ignore=tests/deploy -p no:cacheprovider "$@" || status=$?
if [ -f scripts/deploy-tools-requirements.txt ]; then
  # Chart and Dockerfile tools (helm SDK, kubernetes-validate, hadolint, checkov) live in their
  # own venv: their pins clash with vLLM's.
  [ -x .venv-deploy/bin/python ] || python3 -m venv .venv-deploy
  .venv-deploy/bin/python -m pip install --quiet --upgrade pip
  .venv-deploy/bin/python -m pip install --quiet -r scripts/deploy-tools-requirements.txt
  .venv-deploy/bin/python -m pytest tests/deploy -p no:cacheprovider || status=$?
fi
exit $status
