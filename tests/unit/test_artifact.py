"""The committed gpt-oss-tiny artifact: its SHA-256, and the exactness of its expansion."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from safetensors.torch import load_file  # noqa: E402

from server.models import artifact  # noqa: E402
from server.models.tiny import tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def expanded(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpt-oss-tiny")
    return artifact.expand(artifact.ARTIFACT, out, sha256=artifact.ARTIFACT_SHA256)


def test_committed_artifact_has_the_pinned_sha256():
    data = artifact.ARTIFACT.read_bytes()
    assert hashlib.sha256(data).hexdigest() == artifact.ARTIFACT_SHA256
    assert len(data) < 2 * 2**20  # compact: a few MB at most


def test_a_changed_artifact_is_rejected(tmp_path):
    data = bytearray(artifact.ARTIFACT.read_bytes())
    data[-9] ^= 1  # inside the gzip trailer: same length, different hash
    bad = tmp_path / "bad.safetensors.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(artifact.ArtifactError, match="SHA-256"):
        artifact.expand(bad, tmp_path / "out", sha256=artifact.ARTIFACT_SHA256)


def test_expansion_round_trips_exactly(expanded):
    tensors, _ = artifact.read_artifact(artifact.ARTIFACT)
    used = tensors[artifact.USED_IDS].tolist()
    assert artifact.compact(expanded, used) == artifact.ARTIFACT.read_bytes()


def test_expanded_weights_are_the_stored_ones(expanded):
    tensors, config = artifact.read_artifact(artifact.ARTIFACT)
    full = load_file(str(expanded / artifact.MODEL_FILE))
    used = tensors[artifact.USED_IDS]
    assert set(full) == {k.removesuffix("@rows") for k in tensors if k != artifact.USED_IDS}
    for name, value in tensors.items():
        if name == artifact.USED_IDS:
            continue
        if name.endswith("@rows"):
            matrix = full[name.removesuffix("@rows")]
            assert matrix.shape == (config["vocab_size"], value.shape[1])
            assert torch.equal(matrix[used], value)
            rest = torch.ones(matrix.shape[0], dtype=torch.bool)
            rest[used] = False
            assert not matrix[rest].any()  # unused rows are exactly zero
        else:
            assert full[name].dtype == torch.bfloat16
            assert torch.equal(full[name], value)


def test_expanded_config_is_the_tiny_config(expanded):
    config = json.loads((expanded / "config.json").read_text())
    assert config == tiny_config()
    assert (expanded / "generation_config.json").is_file()


def test_artifact_gzip_is_reproducible():
    # mtime 0 in the gzip header: the same weights always give the same bytes
    data = artifact.ARTIFACT.read_bytes()
    assert data[4:8] == b"\0\0\0\0"
    assert gzip.compress(gzip.decompress(data), compresslevel=9, mtime=0) == data


def test_model_dir_expands_once_into_the_cache(tmp_path):
    first = artifact.model_dir(tmp_path)
    stamp = (first / artifact.MODEL_FILE).stat().st_mtime_ns
    assert artifact.model_dir(tmp_path) == first
    assert (first / artifact.MODEL_FILE).stat().st_mtime_ns == stamp
