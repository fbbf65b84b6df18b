"""The tiny MXFP4 gpt-oss: the quantised (MXFP4 MoE) path of the real checkpoints.

vLLM's CPU MXFP4 MoE kernel needs AMX tiles (Sapphire Rapids or newer); its emulation fallback
needs Triton, which the CPU build lacks. On a CPU without AMX the engine cannot load an MXFP4
model at all ("No MXFP4 MoE backend supports the deployment configuration"), so these tests skip.
"""

from __future__ import annotations

import pytest

from tests.engine.helpers import (
    check_completion,
    check_concurrent_streams,
    check_length,
    stream_once,
)


def _mxfp4_runs() -> bool:
    try:
        import torch

        return torch.cuda.is_available() or bool(torch.cpu._is_amx_tile_supported())
    except Exception:  # noqa: BLE001
        return False


pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(not _mxfp4_runs(), reason="vLLM's CPU MXFP4 MoE kernel needs AMX tiles"),
]


def test_non_stream_n2(mxfp4_server):
    check_completion(mxfp4_server, n=2)


def test_stream(mxfp4_server):
    stream_once(mxfp4_server)


def test_max_tokens_gives_length(mxfp4_server):
    check_length(mxfp4_server)


def test_16_concurrent_streams(mxfp4_server):
    check_concurrent_streams(mxfp4_server)
