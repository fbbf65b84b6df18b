"""vLLM engine flags pass through vLLM's own parser; unknown flags stop start-up (no engine start)."""

from __future__ import annotations

import pytest

pytest.importorskip("vllm")

from server.config import parse_settings  # noqa: E402
from server.engine.vllm import EngineArgsError, VLLMEngine, build_engine_args  # noqa: E402


def test_builtin_defaults_and_user_flags_override():
    settings = parse_settings(["--model", "gpt-oss-tiny-random", "--max-num-seqs", "7",
                               "--kv-cache-dtype", "fp8", "--enforce-eager",
                               "--gpu-memory-utilization", "0.5", "--tensor-parallel-size", "1",
                               "--max-num-batched-tokens", "1024", "--load-format", "auto"])
    args = build_engine_args(settings)
    assert args.model.endswith("gpt-oss-tiny-random")
    assert args.max_model_len == 4096  # built-in default
    assert args.max_num_seqs == 7 and args.enforce_eager and args.kv_cache_dtype == "fp8"
    assert args.gpu_memory_utilization == 0.5 and args.max_num_batched_tokens == 1024
    assert args.load_format == "auto"  # overrides the built-in --load-format dummy
    assert args.skip_tokenizer_init is True


def test_our_max_model_len_is_forwarded():
    args = build_engine_args(parse_settings(["--model", "gpt-oss-tiny-random",
                                             "--max-model-len", "1024"]))
    assert args.max_model_len == 1024


def test_our_stream_interval_is_vllms_too():
    """vLLM's output processor batches by it (tested on the engine in test_stream_interval)."""
    for flags, expected in (([], 1), (["--stream-interval", "8"], 8)):
        args = build_engine_args(parse_settings(["--model", "gpt-oss-tiny-random", *flags]))
        assert args.stream_interval == expected


def test_other_models_pass_through_and_tokenizer_init_can_be_enabled():
    args = build_engine_args(parse_settings(["--model", "openai/gpt-oss-20b",
                                             "--no-skip-tokenizer-init"]))
    assert args.model == "openai/gpt-oss-20b" and args.skip_tokenizer_init is False


def test_unknown_flag_is_rejected(capsys):
    settings = parse_settings(["--model", "gpt-oss-tiny-random", "--no-such-flag", "3"])
    with pytest.raises(EngineArgsError, match="--no-such-flag"):
        build_engine_args(settings)
    with pytest.raises(SystemExit) as exc:
        VLLMEngine.from_settings(settings)
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-flag 3" in capsys.readouterr().err


def test_vllm_environment_is_read_once_after_start():
    """vLLM re-reads its environment variables on every access (its output processing does so
    for every output) unless cached; the server caches them once the engine has started."""
    import subprocess
    import sys

    code = ("import os; from vllm import envs; from server.engine.vllm import cache_vllm_environment\n"
            "os.environ['VLLM_COMPUTE_NANS_IN_LOGITS'] = '1'; before = envs.VLLM_COMPUTE_NANS_IN_LOGITS\n"
            "cache_vllm_environment(); os.environ['VLLM_COMPUTE_NANS_IN_LOGITS'] = '0'\n"
            "print(before, envs.VLLM_COMPUTE_NANS_IN_LOGITS)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.split() == ["True", "True"]  # read at the cache, not at the access
