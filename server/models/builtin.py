"""Built-in model names: ``--model gpt-oss-tiny[-random[-mxfp4]]`` work with no download.

``resolve_model(name)`` returns ``(model, default_engine_args)``: the path or id handed to vLLM's
``--model`` and the vLLM engine flags the model needs by default. User flags come after the
defaults on vLLM's command line, so they override them. Any name that is not built in is passed
through unchanged (a Hugging Face id or a local directory) with no default flags.

The tiny models are written once to ``~/.cache/gpt-oss-server/models/<name>`` (``$XDG_CACHE_HOME``
is honoured): ``gpt-oss-tiny`` is expanded from the trained artifact (server/models/artifact.py);
the ``-random`` ones have no weight file and load random weights (``--load-format dummy``). All
default to bf16, a 4,096-token context and a 256 MiB KV cache (``--kv-cache-memory-bytes``: on CPU
the default reservation, ``--gpu-memory-utilization`` 0.92 of RAM, fails on small machines).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from server.models import tiny

TINY_ENGINE_ARGS = [
    "--dtype", "bfloat16",
    "--max-model-len", "4096",
    "--kv-cache-memory-bytes", str(256 * 2**20),
]
RANDOM_WEIGHTS = ["--load-format", "dummy"]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gpt-oss-server" / "models"


def _tiny_random(quantized: bool) -> Callable[[], tuple[str, list[str]]]:
    def build() -> tuple[str, list[str]]:
        name = "gpt-oss-tiny-random-mxfp4" if quantized else "gpt-oss-tiny-random"
        path = tiny.write_model_dir(cache_dir() / name, quantized=quantized)
        return str(path), [*TINY_ENGINE_ARGS, *RANDOM_WEIGHTS]
    return build


def _tiny() -> tuple[str, list[str]]:
    # The one place that decides what "gpt-oss-tiny" is: the trained tiny model
    # (training.train), expanded once from the committed compact artifact into the cache.
    from server.models import artifact

    return str(artifact.model_dir(cache_dir())), list(TINY_ENGINE_ARGS)


BUILTIN_MODELS: dict[str, Callable[[], tuple[str, list[str]]]] = {
    "gpt-oss-tiny": _tiny,
    "gpt-oss-tiny-random": _tiny_random(quantized=False),
    "gpt-oss-tiny-random-mxfp4": _tiny_random(quantized=True),
}


def resolve_model(name: str) -> tuple[str, list[str]]:
    """(model path or id for vLLM, default vLLM engine args) for a --model value."""
    builder = BUILTIN_MODELS.get(name)
    if builder is None:
        return name, []
    return builder()
