"""A tiny gpt-oss model directory: the real architecture, toy sizes, for CPU tests and demos.

``python -m server.models.tiny --out DIR [--mxfp4] [--tokenizer]`` writes:

- ``config.json``: ``GptOssForCausalLM`` with the real gpt-oss layout (vocabulary 201,088,
  alternating sliding/full attention, yarn rope as in gpt-oss-20b/120b, MoE with a router) at toy
  sizes: hidden 64, 2 layers, 4 query heads and 1 KV head of ``head_dim`` 64 (vLLM's CPU attention
  rejects smaller head dims), 4 experts, 2 per token. ``--mxfp4`` adds the same
  ``quantization_config`` as the published checkpoints, so vLLM takes the MXFP4 MoE path.
- ``generation_config.json`` as in the published checkpoints.
- optionally ``tokenizer.json`` (o200k_harmony) generated from the Harmony vocabulary. The server
  does not need it (it runs vLLM with ``skip_tokenizer_init``); vLLM's own server and structured
  outputs do. Generating it needs ``transformers`` and ``blobfile``.

There is no weight file: serve it with ``--load-format dummy`` (random weights; the answers are
noise). ``server.models.builtin`` does that for the built-in names.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

VOCAB_SIZE = 201088
BOS_TOKEN_ID = 199998  # <|startoftext|>
PAD_TOKEN_ID = 199999  # <|endoftext|>
EOS_TOKEN_IDS = [200002, 199999, 200012]  # <|return|>, <|endoftext|>, <|call|>


def tiny_config(quantized: bool = False) -> dict:
    """config.json of a tiny GptOssForCausalLM (bf16, or MXFP4 like the real checkpoints)."""
    config: dict = {
        "architectures": ["GptOssForCausalLM"],
        "model_type": "gpt_oss",
        "attention_bias": True,
        "attention_dropout": 0.0,
        "bos_token_id": BOS_TOKEN_ID,
        "eos_token_id": EOS_TOKEN_IDS[0],
        "pad_token_id": PAD_TOKEN_ID,
        "experts_per_token": 2,
        "num_experts_per_tok": 2,
        "num_local_experts": 4,
        "head_dim": 64,
        "hidden_act": "silu",
        "hidden_size": 64,
        "intermediate_size": 64,
        "initial_context_length": 4096,
        "initializer_range": 0.02,
        "layer_types": ["sliding_attention", "full_attention"],
        "max_position_embeddings": 4096,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "output_router_logits": False,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "factor": 32.0,
            "original_max_position_embeddings": 4096,
            "rope_type": "yarn",
            "truncate": False,
        },
        "rope_theta": 150000,
        "router_aux_loss_coef": 0.9,
        "sliding_window": 128,
        "swiglu_limit": 7.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": VOCAB_SIZE,
    }
    if quantized:
        config["quantization_config"] = {
            "modules_to_not_convert": [
                "model.layers.*.self_attn",
                "model.layers.*.mlp.router",
                "model.embed_tokens",
                "lm_head",
            ],
            "quant_method": "mxfp4",
        }
    return config


def generation_config() -> dict:
    return {
        "bos_token_id": BOS_TOKEN_ID,
        "do_sample": True,
        "eos_token_id": EOS_TOKEN_IDS,
        "pad_token_id": PAD_TOKEN_ID,
    }


def write_tokenizer(out: Path) -> Path:
    """Write tokenizer.json (o200k_harmony) generated from the verified Harmony vocabulary."""
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding
    from transformers.integrations.tiktoken import convert_tiktoken_to_fast

    from server.harmony.encoding import VOCAB_FILE, resolve_vocabulary

    directory = resolve_vocabulary()
    encoding = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(directory / VOCAB_FILE))
    specials = {}
    for token_id in range(len(ranks), VOCAB_SIZE):
        try:
            specials[encoding.decode([token_id])] = token_id
        except Exception:  # noqa: BLE001 - ids without a special token are reserved
            specials[f"<|reserved_{token_id}|>"] = token_id
    # o200k's split pattern, as in tiktoken_ext.openai_public.o200k_base
    enc = tiktoken.Encoding(
        name="o200k_harmony",
        pat_str="|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        mergeable_ranks=ranks,
        special_tokens=specials,
    )
    convert_tiktoken_to_fast(enc, str(out))
    return out / "tokenizer.json"


def write_model_dir(out: Path, quantized: bool = False, tokenizer: bool = False) -> Path:
    """Write a tiny gpt-oss model directory (no weights: serve with --load-format dummy)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in (("config.json", tiny_config(quantized)),
                          ("generation_config.json", generation_config())):
        partial = out / f".{name}.partial"
        partial.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        partial.replace(out / name)
    if tokenizer:
        write_tokenizer(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.models.tiny",
        description="Write a tiny gpt-oss model directory (serve it with --load-format dummy).")
    parser.add_argument("--out", type=Path, required=True, help="Directory to write.")
    parser.add_argument("--mxfp4", action="store_true",
                        help="Add the MXFP4 quantization_config of the real checkpoints.")
    parser.add_argument("--tokenizer", action="store_true",
                        help="Also write tokenizer.json (needs transformers and blobfile).")
    args = parser.parse_args(argv)
    path = write_model_dir(args.out, quantized=args.mxfp4, tokenizer=args.tokenizer)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
