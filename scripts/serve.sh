#!/usr/bin/env bash
# Set up (CPU) and start the server on http://127.0.0.1:8000 with the built-in tiny gpt-oss.
# Extra arguments go to the server, e.g. `bash scripts/serve.sh --api-key sk-local`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "serve: starting gpt-oss-tiny on http://127.0.0.1:8000; the engine loads for 1-2 min on 2 cores"
echo "serve: (the first time the model is also unpacked into ~/.cache/gpt-oss-server, about 2 s);"
echo "serve: it answers once a line says 'ready: serving gpt-oss-tiny'. Ctrl-C stops it."
exec .venv/bin/python -m server --engine vllm --model gpt-oss-tiny --host 127.0.0.1 --port 8000 "$@"
