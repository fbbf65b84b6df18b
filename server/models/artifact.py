"""The trained tiny gpt-oss in compact form, and its expansion into a model directory vLLM loads.

The artifact (``artifacts/gpt-oss-tiny.safetensors.gz``) is a gzip (mtime 0, so the bytes are
reproducible) of a safetensors file holding:

- ``used_ids``: the token ids that occur in the training data (int64, ascending);
- ``model.embed_tokens.weight@rows`` and ``lm_head.weight@rows``: only those rows of the
  embedding and output matrices (bf16); every other row of the full 201,088-row matrices is zero
  (the training keeps unused output rows at exactly zero, see ``training.train``);
- every other weight, in full (bf16);
- metadata ``config``: the config.json of the full model.

``expand(artifact, out_dir)`` writes ``config.json``, ``generation_config.json`` and
``model.safetensors`` (bf16, full shapes). ``compact(model_dir, used_ids)`` is its inverse; the
round trip is exact. ``model_dir()`` expands the committed artifact once into a cache directory
after checking its SHA-256 against ``ARTIFACT_SHA256``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

ARTIFACT = Path(__file__).parent / "artifacts" / "gpt-oss-tiny.safetensors.gz"
ARTIFACT_SHA256 = "0610917fef36e96d440f52ba25346b1876cf8728ab142f5eea3b834a3a6f7fd1"
ROW_TENSORS = ("model.embed_tokens.weight", "lm_head.weight")
USED_IDS = "used_ids"
MODEL_FILE = "model.safetensors"


class ArtifactError(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _serialize(tensors: dict, config: dict) -> bytes:
    from safetensors.torch import save

    tensors = {k: tensors[k].contiguous() for k in sorted(tensors)}
    return save(tensors, metadata={"config": json.dumps(config, sort_keys=True)})


def build_artifact(state: dict, used: list[int], config: dict) -> bytes:
    """Compact artifact bytes from a compact state dict (vocabulary = ``used``, in order)."""
    import torch

    tensors = {USED_IDS: torch.tensor(used, dtype=torch.int64)}
    for name, value in state.items():
        value = value.detach().to(torch.bfloat16)
        if name in ROW_TENSORS:
            if value.shape[0] != len(used):
                raise ArtifactError(f"{name}: {value.shape[0]} rows for {len(used)} used ids")
            name = f"{name}@rows"
        tensors[name] = value
    raw = _serialize(tensors, config)
    return gzip.compress(raw, compresslevel=9, mtime=0)


def write_artifact(path: Path, state: dict, used: list[int], config: dict) -> str:
    data = build_artifact(state, used, config)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_artifact(path: Path = ARTIFACT, sha256: str | None = None) -> tuple[dict, dict]:
    """(tensors, config) of an artifact; checks its SHA-256 when ``sha256`` is given."""
    from safetensors import safe_open
    from safetensors.torch import load

    data = Path(path).read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactError(f"{path}: SHA-256 {hashlib.sha256(data).hexdigest()} "
                            f"is not the expected {sha256}")
    raw = gzip.decompress(data)
    tensors = load(raw)
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as tmp:
        tmp.write(raw)
        tmp.flush()
        with safe_open(tmp.name, framework="pt") as f:
            config = json.loads(f.metadata()["config"])
    return tensors, config


def full_tensors(tensors: dict, config: dict) -> dict:
    """The full state dict (bf16): used rows scattered into zero matrices of the full vocabulary."""
    import torch

    used = tensors[USED_IDS]
    out = {}
    for name, value in tensors.items():
        if name == USED_IDS:
            continue
        if name.endswith("@rows"):
            name = name[: -len("@rows")]
            full = torch.zeros(config["vocab_size"], value.shape[1], dtype=value.dtype)
            full[used] = value
            value = full
        out[name] = value
    return out


def expand(artifact: Path, out_dir: Path, sha256: str | None = None) -> Path:
    """Write a model directory (config.json, generation_config.json, model.safetensors)."""
    from safetensors.torch import save_file

    from server.models.tiny import generation_config

    tensors, config = read_artifact(artifact, sha256)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = full_tensors(tensors, config)
    save_file({k: state[k].contiguous() for k in sorted(state)}, str(out_dir / MODEL_FILE),
              metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out_dir / "generation_config.json").write_text(
        json.dumps(generation_config(), indent=2) + "\n", encoding="utf-8")
    return out_dir


def compact(model_dir: Path, used: list[int]) -> bytes:
    """Artifact bytes from an expanded model directory: the inverse of ``expand``."""
    import torch
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    state = load_file(str(model_dir / MODEL_FILE))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    index = torch.tensor(used, dtype=torch.int64)
    rest = torch.ones(config["vocab_size"], dtype=torch.bool)
    rest[index] = False
    for name in ROW_TENSORS:
        if state[name][rest].any():
            raise ArtifactError(f"{name} has non-zero rows outside the used ids")
        state[name] = state[name][index]
    return build_artifact(state, used, config)


def model_dir(root: Path | None = None) -> Path:
    """The expanded trained model, written once into the cache (keyed by the artifact's hash)."""
    if root is None:
        from server.models.builtin import cache_dir

        root = cache_dir()
    root = Path(root)
    target = root / f"gpt-oss-tiny-{ARTIFACT_SHA256[:16]}"
    if (target / MODEL_FILE).is_file() and (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".gpt-oss-tiny-", dir=root))
    try:
        expand(ARTIFACT, tmp, sha256=ARTIFACT_SHA256)
        try:
            tmp.replace(target)
        except OSError:  # another process won the race
            if not (target / MODEL_FILE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
