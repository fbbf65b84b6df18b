"""An engine that replays scripted Harmony completions: CI and client development, no GPU.

``--script FILE``: JSON Lines, each line ``{"completion": "<raw Harmony text>"}`` written with
literal special tokens. Each generation takes the next line (wrapping around) and yields its
tokens in steps of ``chunk_size`` with ``token_delay`` seconds per step, handed over as vLLM's
output processor does at ``--stream-interval N`` (the first step alone, then whole steps once N
tokens have gathered), stopping where vLLM would: after the first assistant stop token
(``<|return|>``, ``<|call|>``), at ``max_tokens`` ("length"), or on abort. Every call is
recorded in ``calls`` for tests.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

from server.engine.protocol import EngineStats, GenerationRequest, TokenDelta
from server.harmony.encoding import Harmony


class ScriptError(ValueError):
    """A --script file that cannot be read or has no usable completion."""


def load_script(path: Path) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read {path}: {exc}") from None
    completions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ScriptError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(record, dict) or not isinstance(record.get("completion"), str):
            raise ScriptError(f"{path}:{number}: each line needs a string field 'completion'")
        completions.append(record["completion"])
    if not completions:
        raise ScriptError(f"{path}: no completions")
    return completions


def _placeholder_logprobs(tokens: list[int], top: int, vocab_size: int):
    """Logprobs for replayed tokens: made up, deterministic and well-formed (the token itself
    first, then the next ids with lower values); the scripted engine has no model."""
    out = []
    for token in tokens:
        value = -0.25 * (token % 5) - 0.01
        out.append((value, tuple(((token + j) % vocab_size, value - j) for j in range(top))))
    return out


# With no delay, hand the event loop over every this many steps: enough for fairness between
# requests and for cancellation, without costing a loop iteration per token in benchmarks.
YIELD_EVERY = 16


class ScriptedEngine:
    def __init__(self, harmony: Harmony, completions: list[str], *, chunk_size: int = 1,
                 stream_interval: int = 1, token_delay: float = 0.0, vocab_size: int = 201088,
                 max_model_len: int = 131072) -> None:
        self._scripts = [harmony.encode_completion(text) for text in completions]
        # Each step makes chunk_size tokens; steps reach the pipeline as vLLM's output processor
        # hands them over at --stream-interval N: the first step alone, then a delta once N
        # tokens have gathered (whole steps), and the last. Each script is cut into its deltas
        # once (shared by every replay: token lists are never changed by the pipeline).
        group = chunk_size * -(-stream_interval // chunk_size)
        self._ends = [[*range(chunk_size, len(tokens), group), len(tokens)] if tokens else []
                      for tokens in self._scripts]
        self._chunks = [[tokens[start:end] for start, end in itertools.pairwise([0, *ends])]
                        for tokens, ends in zip(self._scripts, self._ends, strict=True)]
        self._next = itertools.cycle(range(len(self._scripts)))
        self._chunk_size = chunk_size
        self._token_delay = token_delay
        self._vocab_size = vocab_size
        self._max_model_len = max_model_len
        self._running: dict[str, asyncio.Event] = {}
        self.calls: list[GenerationRequest] = []
        self.aborted: list[str] = []
        self.dead = False
        self.started = False

    @property
    def max_model_len(self) -> int:
        return self._max_model_len if self.started else 0  # like vLLM: known once loaded

    @property
    def vocab_size(self) -> int:
        return self._vocab_size if self.started else 0

    @property
    def is_dead(self) -> bool:
        return self.dead

    async def start(self) -> None:
        self.started = True

    async def shutdown(self) -> None:
        for stop in self._running.values():
            stop.set()

    def stats(self) -> EngineStats:
        return EngineStats(running=len(self._running), waiting=0)

    async def abort(self, request_id: str) -> None:
        if request_id in self._running:
            self._running[request_id].set()

    def _tokens_for(self, request: GenerationRequest) -> tuple[list[int], str]:
        return self._cut(self._scripts[next(self._next)], request)

    @staticmethod
    def _cut(tokens: list[int], request: GenerationRequest) -> tuple[list[int], str]:
        stops = request.options.stop_token_ids
        end = min((tokens.index(t) + 1 for t in stops if t in tokens), default=len(tokens))
        if end > request.options.max_tokens:
            return tokens[: request.options.max_tokens], "length"
        return tokens[:end], "stop"

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        self.calls.append(request)
        script = next(self._next)
        tokens, reason = self._cut(self._scripts[script], request)
        aborted = self._running[request.request_id] = asyncio.Event()
        finished = False  # the last delta went out: closing the generator now is no abort
        size, delay, top = self._chunk_size, self._token_delay, request.options.logprobs
        ends = self._ends[script]  # the script's deltas that fit whole, then what is left
        whole = bisect.bisect_right(ends, len(tokens))
        done = ends[whole - 1] if whole else 0
        chunks = self._chunks[script][:whole] + ([tokens[done:]] if done < len(tokens) else [])
        last = len(chunks) - 1
        try:
            for step, chunk in enumerate(chunks):
                if delay:  # per step, and a delta may carry several
                    await asyncio.sleep(delay * -(-len(chunk) // size))
                elif step % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let other requests (and cancellation) in
                if aborted.is_set():
                    self.aborted.append(request.request_id)
                    yield TokenDelta([], "abort")
                    return
                finished = step == last
                yield TokenDelta(chunk, reason if finished else None, None,
                                 None if top is None else
                                 _placeholder_logprobs(chunk, top, self._vocab_size))
            if not tokens:
                finished = True
                yield TokenDelta([], reason)
        except (asyncio.CancelledError, GeneratorExit):
            if not finished:
                self.aborted.append(request.request_id)
            raise
        finally:
            self._running.pop(request.request_id, None)
