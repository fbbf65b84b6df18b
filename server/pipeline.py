"""One pipeline for every chat completion: validate -> render -> generate -> decode -> finish.

``prepare`` checks and renders a request into a ``Completion`` (all errors here are 4xx before
any engine call). ``events`` runs the generations (one per choice) and yields batches of events;
streaming and non-streaming responses are both built from that one sequence (assemble.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from server import metrics
from server.config import Settings
from server.engine.protocol import (
    Engine,
    GenerationRequest,
    SamplingOptions,
)
from server.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
)
from server.events import ContentDelta, Event, Finish
from server.generation import Generation
from server.harmony.decode import ChoiceDecoder
from server.harmony.encoding import Harmony
from server.harmony.render import RenderOptions, render_prompt
from server.limits import check_request, stop_strings
from server.schemas.chat_request import EFFORT_ALIASES, CompletionCreateParams
from server.stops import StopMatcher, apply_stop


@dataclass(slots=True)
class Completion:
    """A validated, rendered request: everything generation needs."""

    id: str
    created: int
    model: str
    prompt: list[int]
    n: int
    options: SamplingOptions
    stop_strings: list[str]
    tools: list[str]
    include_reasoning: bool
    include_usage: bool
    started: float


def _effort(request: CompletionCreateParams, default: str) -> str:
    raw = request.reasoning_effort or (request.reasoning.effort if request.reasoning else None)
    if raw is None:
        return default
    effort = EFFORT_ALIASES.get(raw.lower())
    if effort is None:
        param = "reasoning_effort" if request.reasoning_effort else "reasoning.effort"
        raise InvalidRequestError(
            f"unknown reasoning effort '{raw}'; use low, medium or high", param=param)
    return effort


class Pipeline:
    def __init__(self, settings: Settings, harmony: Harmony, engine: Engine) -> None:
        self.settings = settings
        self.harmony = harmony
        self.engine = engine
        self.active: dict[str, Generation] = {}  # engine request id -> generation in flight

    def render(self, request: CompletionCreateParams) -> list[int]:
        tools = [] if request.tool_choice == "none" else (request.tools or [])
        options = RenderOptions(_effort(request, self.settings.reasoning_effort),
                                self.settings.harmony_date)
        return render_prompt(self.harmony, request.messages, tools, options)

    def check_prompt(self, prompt: list[int]) -> int:
        """Raise unless the prompt fits the context and the vocabulary; return tokens left."""
        limit = self.engine.max_model_len
        if len(prompt) >= limit:
            raise ContextLengthExceededError(
                f"this model's maximum context length is {limit} tokens; the messages "
                f"rendered to {len(prompt)} tokens", param="messages")
        if prompt and (max(prompt) >= self.engine.vocab_size or min(prompt) < 0):
            # such an id would crash vLLM's engine
            raise InvalidRequestError("the prompt has a token outside the model's vocabulary",
                                      param="messages")
        return limit - len(prompt)

    def checked_prompt(self, request: CompletionCreateParams) -> tuple[list[int], dict | None]:
        """The rendered prompt (and logit bias) of a request that passed every check but the
        context length: the one path of chat completions and /tokenize."""
        if request.model not in self.settings.served_model_name:
            raise ModelNotFoundError(f"the model '{request.model}' does not exist",
                                     param="model")
        logit_bias = check_request(request, self.settings, self.engine.vocab_size)
        return self.render(request), logit_bias

    def prepare(self, request: CompletionCreateParams, api_key: str | None = None) -> Completion:
        prompt, logit_bias = self.checked_prompt(request)
        room = self.check_prompt(prompt)
        wanted = request.max_completion_tokens or request.max_tokens
        options = SamplingOptions(
            # max_tokens beyond the context is capped to what fits (finish_reason "length").
            max_tokens=min(wanted, room) if wanted else room,
            stop_token_ids=self.harmony.stop_token_ids,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=0 if request.top_k in (None, -1) else request.top_k,
            min_p=request.min_p or 0.0,
            presence_penalty=request.presence_penalty or 0.0,
            frequency_penalty=request.frequency_penalty or 0.0,
            seed=request.seed,
            logit_bias=logit_bias,
            cache_salt=self._cache_salt(api_key),
        )
        include_reasoning = request.include_reasoning is not False and not (
            request.reasoning is not None and request.reasoning.exclude)
        return Completion(
            id="chatcmpl-" + secrets.token_hex(16),
            created=int(time.time()),
            model=request.model,
            prompt=prompt,
            n=request.n or 1,
            options=options,
            stop_strings=stop_strings(request),
            tools=[t.function.name for t in request.tools or ()],
            include_reasoning=include_reasoning,
            include_usage=bool(request.stream_options and request.stream_options.include_usage),
            started=time.monotonic(),
        )

    def _cache_salt(self, api_key: str | None) -> str | None:
        if not (self.settings.cache_salt_per_key and api_key):
            return None
        return hashlib.sha256(api_key.encode()).hexdigest()[:32]

    async def events(self, completion: Completion) -> AsyncIterator[list[Event]]:
        """Batches of events of all choices, interleaved as they are generated."""
        deadline = completion.started + self.settings.request_timeout
        if completion.n == 1:
            async for batch in self._choice(completion, 0, deadline):
                yield batch
            return
        queue: asyncio.Queue = asyncio.Queue()

        async def pump(choice: int) -> None:
            try:
                async for batch in self._choice(completion, choice, deadline):
                    await queue.put(batch)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                await queue.put(exc)
                return
            await queue.put(None)

        tasks = [asyncio.create_task(pump(i)) for i in range(completion.n)]
        try:
            remaining = completion.n
            while remaining:
                item = await queue.get()
                if item is None:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _choice(self, completion: Completion, choice: int,
                      deadline: float) -> AsyncIterator[list[Event]]:
        request = _generation_request(completion, choice)
        decoder = ChoiceDecoder(self.harmony, choice, completion.tools)
        stopper = StopMatcher(completion.stop_strings) if completion.stop_strings else None
        interval = self.settings.stream_interval
        generation = Generation(completion.started, deadline, self.settings.stream_idle_timeout)
        self.active[request.request_id] = generation
        stream = self.engine.generate(request)
        reason: str | None = None
        pending: list[Event] = []
        unsent = 0
        try:
            while reason is None:
                delta = await generation.next_step(stream)
                # only this step's events go through the stop matcher: those already pending
                # (stream_interval > 1) went through it before and must not be fed again
                fresh: list[Event] = []
                decoder.feed(delta.token_ids, fresh)
                unsent += len(delta.token_ids)
                reason = delta.finish_reason
                hit = stopper is not None and apply_stop(stopper, fresh, choice)
                pending += fresh
                if hit:
                    metrics.ABORTS.labels("stop_string").inc()
                    reason = "stop"
                elif decoder.failed:
                    metrics.HARMONY_PARSE_ERRORS.inc()
                    reason = "stop"
                if pending and (unsent >= interval or reason):
                    yield pending
                    pending, unsent = [], 0
        finally:
            del self.active[request.request_id]
            await stream.aclose()  # before the engine finished: this aborts the request
            generation.observe_timing()
        tail = stopper.flush() if stopper is not None else ""
        finish = decoder.finish(reason, len(completion.prompt))
        _count_usage(finish, choice)
        yield [*pending, *([ContentDelta(choice, tail)] if tail else []), finish]

    def reap(self) -> None:
        """Enforce deadlines: cancel generations idle or past their deadline (called ~4x/s)."""
        now = time.monotonic()
        for generation in list(self.active.values()):
            generation.check(now)

    def last_progress(self) -> float | None:
        """When a token last arrived for any request in flight (None: nothing in flight)."""
        if not self.active:
            return None
        return max(g.last_step for g in self.active.values())


def _generation_request(completion: Completion, choice: int) -> GenerationRequest:
    options = completion.options
    if options.seed is not None and choice:  # distinct but reproducible choices
        options = replace(options, seed=options.seed + choice)
    return GenerationRequest(f"{completion.id}-{choice}", completion.prompt, options)


def _count_usage(finish: Finish, choice: int) -> None:
    if choice == 0:
        metrics.PROMPT_TOKENS.inc(finish.usage.prompt_tokens)
    metrics.COMPLETION_TOKENS.inc(finish.usage.completion_tokens)
    metrics.REASONING_TOKENS.inc(finish.usage.reasoning_tokens)

