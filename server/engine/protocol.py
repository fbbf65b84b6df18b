"""What the pipeline needs from an inference engine, and nothing more.

Prompts go in as token ids (rendered by Harmony); output comes back as token-id deltas. The
engine never sees text, so the scripted engine and vLLM are interchangeable under the pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


class EngineDeadError(RuntimeError):
    """The engine can no longer serve requests; the process should exit and be restarted."""


@dataclass(frozen=True, slots=True)
class SamplingOptions:
    """Per-generation sampling settings, already validated against the model's limits."""

    max_tokens: int
    stop_token_ids: tuple[int, ...]
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 disables
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)
    cache_salt: str | None = None
    constraint: dict | None = None  # Harmony routes (server.harmony.constrain); None: free
    logprobs: int | None = None  # None: none; k: each token's logprob and the top k


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    request_id: str
    prompt_token_ids: list[int]
    options: SamplingOptions


TokenLogprob = tuple[float, tuple[tuple[int, float], ...]]


@dataclass(slots=True)
class TokenDelta:
    """New tokens of one generation; ``finish_reason`` is set on the last delta.

    finish_reason is "stop" (a stop token was produced; it is included in token_ids),
    "length" (max_tokens reached) or "abort".
    """

    token_ids: list[int]
    finish_reason: str | None = None
    cached_tokens: int | None = None  # prompt tokens served from the prefix cache (if known)
    # with SamplingOptions.logprobs: per token, (its logprob, ((id, logprob) of the top k))
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True, slots=True)
class EngineStats:
    running: int
    waiting: int


class Engine(Protocol):
    """An engine owned by the app: started in the lifespan, stopped at shutdown."""

    @property
    def max_model_len(self) -> int: ...  # 0 until start() has loaded the model

    @property
    def vocab_size(self) -> int: ...  # 0 until start() has loaded the model

    @property
    def is_dead(self) -> bool: ...

    async def start(self) -> None:
        """Load the model. Readiness is reported once this returns."""

    async def shutdown(self) -> None: ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """Stream token deltas. Closing the iterator early aborts the request in the engine."""

    async def abort(self, request_id: str) -> None: ...

    def stats(self) -> EngineStats: ...
