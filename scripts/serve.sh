#!/usr/bin/env bash
# Set up (CPU) and start the server on http://127.0.0.1:8000 with the built-in tiny gpt-oss.
# Extra arguments go to the server, e.g. `bash scripts/serve.sh --api-key sk-local`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m server --engine vllm --model gpt-oss-tiny --host 127.0.0.1 --port 8000 "$@"
