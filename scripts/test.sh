#!/usr/bin/env bash
# Set up everything from scratch and run all tests (the command CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy=()
[ -f scripts/deploy-tools-requirements.txt ] && deploy=(--deploy-tools)
bash scripts/setup.sh "${deploy[@]}"
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
echo "test: ruff (a few seconds)"
.venv/bin/python -m ruff check server tests loadtest training || status=$?
echo "test: pytest tests/ (long: the engine and e2e tests start the real vLLM engine many times)"
.venv/bin/python -m pytest tests --ignore=tests/deploy -p no:cacheprovider "$@" || status=$?
if [ ${#deploy[@]} -gt 0 ]; then
  # Chart and Dockerfile tools (helm SDK, kubernetes-validate, hadolint, checkov) live in their
  # own venv: their pins clash with vLLM's.
  echo "test: pytest tests/deploy"
  .venv-deploy/bin/python -m pytest tests/deploy -p no:cacheprovider || status=$?
fi
exit $status
