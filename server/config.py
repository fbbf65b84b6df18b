"""Settings: one pydantic-settings model, filled from CLI flags, then ``GPT_OSS_*`` env vars.

Flag names follow vLLM's server where it has the same setting (--host, --port,
--served-model-name, --api-key, --max-model-len). With ``--engine vllm`` every flag this
parser does not know is handed to vLLM's own engine argument parser (see engine/vllm.py).
"""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "GPT_OSS_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    # Serving
    host: str = Field("0.0.0.0", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind.")
    engine: Literal["vllm", "scripted"] = Field(
        "vllm", description="Inference engine: vllm (real model) or scripted (replays --script).")
    model: str = Field(
        "gpt-oss-tiny",
        description="Model for --engine vllm: a Hugging Face id, a local directory, or the built-in "
        "name gpt-oss-tiny (a tiny CPU model for trying the server without a GPU).")
    served_model_name: typing.Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Name(s) clients use in 'model' (repeatable; env: comma-separated). "
        "Default: the --model value.")
    max_model_len: int | None = Field(
        None, ge=16, description="Context length (prompt + output tokens). Default: the model's.")

    # Auth
    api_key: typing.Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API key clients must send as 'Authorization: Bearer KEY' (repeatable; "
        "env GPT_OSS_API_KEY: comma-separated). No key configured: no auth.")
    api_key_file: Path | None = Field(
        None, description="File with one API key per line (e.g. a mounted Kubernetes Secret).")
    protect_metrics: bool = Field(False, description="Require an API key for /metrics too.")

    # Harmony and reasoning
    reasoning_effort: Literal["low", "medium", "high"] = Field(
        "medium", description="Reasoning effort when a request sets none.")
    reasoning_field: Literal["both", "reasoning_content", "reasoning"] = Field(
        "both", description="Which message field(s) carry the model's reasoning.")
    harmony_date: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="Pin the 'Current date' of the Harmony system message (YYYY-MM-DD), for "
        "reproducible prompts and prefix-cache hits across days. Default: today (UTC).")

    # Scripted engine
    script: Path | None = Field(None, description="JSON Lines file of completions (--engine scripted).")
    script_chunk_size: int = Field(1, ge=1, description="Tokens per engine step (scripted engine).")
    script_token_delay: float = Field(0.0, ge=0, description="Seconds between steps (scripted engine).")
    script_vocab_size: int = Field(201088, ge=1, description="Vocabulary size the scripted engine reports.")
    script_max_model_len: int = Field(131072, ge=16, description="Context length of the scripted engine.")

    # Streaming
    stream_interval: int = Field(1, ge=1, description=(
        "Engine tokens per SSE chunk, and vLLM's --stream-interval (higher: less CPU)."))

    # Limits (checked before the engine is called)
    max_request_bytes: int = Field(4 * 2**20, ge=1024, description="Largest request body (413 beyond).")
    max_messages: int = Field(2048, ge=1, description="Most messages in one request.")
    max_message_chars: int = Field(2_000_000, ge=1, description="Most characters over all messages.")
    max_n: int = Field(8, ge=1, le=128, description="Largest n (choices per request).")
    max_stop_strings: int = Field(4, ge=0, description="Most stop strings.")
    max_stop_chars: int = Field(256, ge=1, description="Longest stop string.")
    max_tools: int = Field(128, ge=0, description="Most tools in one request.")
    max_tool_schema_bytes: int = Field(64 * 1024, ge=64, description="Largest JSON of all tools.")
    max_schema_bytes: int = Field(
        64 * 1024, ge=64, description="Largest JSON schema for constrained decoding "
        "(response_format, text.format, strict tools).")
    max_schema_depth: int = Field(32, ge=1, description="Deepest nesting of such a schema.")
    max_logit_bias: int = Field(300, ge=0, description="Most logit_bias entries.")

    # Admission, deadlines, watchdog, drain
    max_concurrent_requests: int = Field(256, ge=1, description="Requests generating at once.")
    max_queued_requests: int = Field(1024, ge=0, description="Requests waiting for a slot; 503 beyond.")
    request_timeout: float = Field(1800.0, gt=0, description="Total seconds a request may take.")
    stream_idle_timeout: float = Field(300.0, gt=0, description="Seconds without a token before abort.")
    watchdog_ready_after: float = Field(
        120.0, gt=0, description="Requests in flight and no token for this long: /ready fails.")
    watchdog_health_after: float = Field(
        600.0, gt=0, description="... and for this long: /health fails (the pod is restarted).")
    drain_timeout: float = Field(
        30.0, ge=0, description="On SIGTERM, seconds in-flight requests may take to finish.")
    cache_salt_per_key: bool = Field(
        False, description="Isolate vLLM's prefix cache per API key (cache_salt), closing the "
        "timing side channel between tenants.")
    render_cache_bytes: int = Field(
        64 * 2**20, ge=0, description="Bytes of rendered prompt pieces kept, so that an agent's "
        "next turn renders only its new messages (a few hundred 23k-token agent conversations; "
        "0: off). Per API key with --cache-salt-per-key.")

    # Responses API: stored responses (previous_response_id, GET/DELETE /v1/responses/{id})
    response_store: str = Field(
        "memory", pattern=r"^(memory|rediss?://.+)$",
        description="Where stored responses live: 'memory' (this process only) or "
        "redis://HOST:PORT/DB (shared by every replica).")
    response_store_max_count: int = Field(
        10_000, ge=1, description="Most stored responses; the oldest are evicted beyond it.")
    response_store_max_bytes: int = Field(
        256 * 2**20, ge=1024, description="Most bytes of stored responses (JSON); the oldest "
        "are evicted beyond it.")
    response_store_ttl: float = Field(
        86_400.0, gt=0, description="Seconds a stored response is kept.")

    # Logging
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Log lines as JSON objects (for log collectors) or as text (for "
        "people); auto: text when stderr is a terminal, else JSON.")
    log_prompts: bool = Field(False, description="Log prompts and completions (off: never logged).")

    # Everything the parser did not know, for the engine (vLLM engine flags).
    engine_args: list[str] = Field(default_factory=list, exclude=True)

    @field_validator("served_model_name", "api_key", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.engine == "scripted" and self.script is None:
            raise ValueError("--engine scripted needs --script FILE")
        if self.api_key_file is not None:
            keys = [line.strip() for line in self.api_key_file.read_text().splitlines()]
            self.api_key = [*self.api_key, *(k for k in keys if k)]
        if not self.served_model_name:
            self.served_model_name = [self.model if self.engine == "vllm" else "gpt-oss-scripted"]
        return self


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """A CLI parser generated from Settings, so flags, env vars and help never drift apart."""
    parser = argparse.ArgumentParser(
        prog="gpt-oss-server",
        description="OpenAI-compatible server for gpt-oss. Every flag also reads from the "
        f"environment as {ENV_PREFIX}<NAME> (e.g. {ENV_PREFIX}API_KEY). With --engine vllm, any "
        "other flag is a vLLM engine flag (e.g. --gpu-memory-utilization, --tensor-parallel-size).",
        argument_default=argparse.SUPPRESS,
    )
    for name, info in Settings.model_fields.items():
        if info.exclude:
            continue
        help_text = f"{info.description} [env {ENV_PREFIX}{name.upper()}]"
        annotation = info.annotation
        origin = typing.get_origin(annotation)
        if annotation is bool:
            parser.add_argument(_flag(name), action=argparse.BooleanOptionalAction, help=help_text)
        elif origin is list:
            parser.add_argument(_flag(name), action="append", help=help_text)
        elif origin is Literal:
            parser.add_argument(_flag(name), choices=typing.get_args(annotation), help=help_text)
        else:
            parser.add_argument(_flag(name), type=_scalar_type(annotation), help=help_text)
    return parser


def _scalar_type(annotation: object) -> type:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation if annotation in (int, float, Path) else str


def parse_settings(argv: list[str] | None = None) -> Settings:
    """Parse CLI flags (over env vars and defaults); unknown flags become engine_args."""
    parser = build_parser()
    known, unknown = parser.parse_known_args(argv)
    values = vars(known)
    if unknown and values.get("engine", "vllm") != "vllm":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return Settings(**values, engine_args=unknown)
