"""One pipeline for every surface: plan -> checks -> render -> generate -> decode -> finish.

``prepare`` checks and renders a plan (server.plan) into a ``Job``: every error there is a 4xx
before any engine call. ``events`` runs the job's generations (one per choice) and yields batches
of neutral events (server.events); each surface folds that one sequence into its stream or its
JSON body, so nothing here knows which API asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from server import metrics
from server.config import Settings
from server.engine.protocol import Engine, GenerationRequest, SamplingOptions
from server.errors import ContextLengthExceededError, InvalidRequestError, ModelNotFoundError
from server.events import EndReason, Event, Finish
from server.generation import Generation
from server.harmony.constrain import engine_rules
from server.harmony.decode import ChoiceDecoder
from server.harmony.encoding import Harmony
from server.harmony.raw import RawDecoder
from server.harmony.render_cache import RenderCache
from server.limits import check_plan
from server.plan import Plan
from server.stops import StopMatcher, apply_stop

# Conversations with at least this much message text (~5k tokens, a few ms of rendering) are
# rendered cooperatively by ``prerender``; shorter ones render in ``prepare`` at once.
PRERENDER_MIN_CHARS = 20_000


@dataclass(slots=True)
class Job:
    """A checked, rendered plan: everything generation needs."""

    id: str  # the surface's response id; engine requests are ``{id}-{choice}``
    model: str
    prompts: list[list[int]]  # one, or a raw Completions batch
    n: int  # choices per prompt: choice c continues prompts[c // n]
    options: SamplingOptions
    stop: list[str]
    tools: list[str]  # declared function names (the decoder's quirk tolerance)
    started: float
    raw: bool = False  # decode as plain text, not Harmony

    @property
    def prompt(self) -> list[int]:
        return self.prompts[0]

    @property
    def choices(self) -> int:
        return len(self.prompts) * self.n


class Pipeline:
    def __init__(self, settings: Settings, harmony: Harmony, engine: Engine) -> None:
        self.settings = settings
        self.harmony = harmony
        self.engine = engine
        self.active: dict[str, Generation] = {}  # engine request id -> generation in flight
        self.renders = RenderCache(harmony, settings.render_cache_bytes)

    def checked_prompts(self, plan: Plan, api_key: str | None = None
                        ) -> tuple[list[list[int]], dict[int, float]]:
        """The prompts' tokens (and parsed logit bias) of a plan that passed every check but the
        context length: the one path of generation and of counting tokens. ``api_key`` names
        the render cache's namespace when it is per key (server.harmony.render_cache)."""
        if plan.model not in self.settings.served_model_name:
            raise ModelNotFoundError(f"the model '{plan.model}' does not exist", param="model")
        logit_bias = check_plan(plan, self.settings, self.engine.vocab_size)
        if plan.prompts is not None:
            return plan.prompts, logit_bias
        return [self.renders.render(plan.conversation, self.settings.harmony_date,
                                    self._render_owner(api_key))], logit_bias

    async def prerender(self, plan: Plan, api_key: str | None = None) -> None:
        """Render a long conversation into the render cache before ``prepare``, handing the
        event loop back between messages, so that an agent-sized first render does not stall
        the streams already running (openai_harmony holds the GIL: a thread would not help);
        ``prepare`` then assembles the prompt from cache hits. It raises what ``prepare``
        would, from the same checks, before rendering anything."""
        conversation, owner = plan.conversation, self._render_owner(api_key)
        if (conversation is None or owner is None or not self.renders.max_bytes
                or sum(len(m.text) for m in conversation.messages) < PRERENDER_MIN_CHARS):
            return
        if plan.model not in self.settings.served_model_name:
            raise ModelNotFoundError(f"the model '{plan.model}' does not exist", param="model")
        check_plan(plan, self.settings, self.engine.vocab_size)
        await self.renders.render_async(conversation, self.settings.harmony_date, owner)

    def _render_owner(self, api_key: str | None) -> str | None:
        """The render cache's namespace: shared unless --cache-salt-per-key; None (no caching)
        when keys are configured but the caller did not say whose request this is."""
        if not self.settings.cache_salt_per_key:
            return ""
        if api_key:
            return self._cache_salt(api_key)
        return None if self.settings.api_key else ""

    def checked_prompt(self, plan: Plan) -> tuple[list[int], dict[int, float]]:
        prompts, logit_bias = self.checked_prompts(plan)
        return prompts[0], logit_bias

    def check_prompt(self, prompt: list[int], param: str) -> int:
        """Raise unless the prompt fits the context and the vocabulary; return tokens left."""
        limit = self.engine.max_model_len
        if len(prompt) >= limit:
            raise ContextLengthExceededError(
                f"this model's maximum context length is {limit} tokens; the {param} "
                f"rendered to {len(prompt)} tokens", param=param)
        if prompt and (max(prompt) >= self.engine.vocab_size or min(prompt) < 0):
            # such an id would crash vLLM's engine
            raise InvalidRequestError("the prompt has a token outside the model's vocabulary",
                                      param=param)
        return limit - len(prompt)

    def prepare(self, plan: Plan, job_id: str, api_key: str | None = None) -> Job:
        prompts, logit_bias = self.checked_prompts(plan, api_key)
        unavailable = getattr(self.engine, "constraints_unavailable", None)
        if plan.constraint is not None and unavailable:
            raise InvalidRequestError(f"constrained decoding is not available: {unavailable}",
                                      param="response_format" if plan.constraint.final
                                      else "tool_choice")
        # a batch shares one max_tokens: the room of its longest prompt
        room = min(self.check_prompt(prompt, plan.input_param) for prompt in prompts)
        s = plan.sampling
        options = SamplingOptions(
            # max_tokens beyond the context is capped to what fits (finish reason: length)
            max_tokens=min(s.max_tokens, room) if s.max_tokens else room,
            stop_token_ids=self.harmony.stop_token_ids,
            temperature=1.0 if s.temperature is None else s.temperature,
            top_p=1.0 if s.top_p is None else s.top_p,
            top_k=0 if s.top_k in (None, -1) else s.top_k,
            min_p=s.min_p or 0.0,
            presence_penalty=s.presence_penalty or 0.0,
            frequency_penalty=s.frequency_penalty or 0.0,
            seed=s.seed,
            logit_bias=logit_bias,
            cache_salt=self._cache_salt(api_key),
            constraint=(engine_rules(self.harmony, plan.constraint)
                        if plan.constraint is not None else None),
            logprobs=s.logprobs,
        )
        tools = [t.name for t in plan.conversation.tools] if plan.conversation else []
        return Job(id=job_id, model=plan.model, prompts=prompts, n=plan.n, options=options,
                   stop=plan.stop, tools=tools, started=time.monotonic(),
                   raw=plan.conversation is None)

    def _cache_salt(self, api_key: str | None) -> str | None:
        if not (self.settings.cache_salt_per_key and api_key):
            return None
        return hashlib.sha256(api_key.encode()).hexdigest()[:32]

    def events(self, job: Job) -> AsyncIterator[list[Event]]:
        """Batches of events of all choices, interleaved as they are generated."""
        deadline = job.started + self.settings.request_timeout
        if job.choices == 1:  # the common case, with no generator layer between
            return self._choice(job, 0, deadline)
        return self._interleaved(job, deadline)

    async def _interleaved(self, job: Job, deadline: float) -> AsyncIterator[list[Event]]:
        queue: asyncio.Queue = asyncio.Queue()

        async def pump(choice: int) -> None:
            try:
                async for batch in self._choice(job, choice, deadline):
                    await queue.put(batch)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                await queue.put(exc)
                return
            await queue.put(None)

        tasks = [asyncio.create_task(pump(i)) for i in range(job.choices)]
        try:
            remaining = job.choices
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

    async def _choice(self, job: Job, choice: int, deadline: float) -> AsyncIterator[list[Event]]:
        request = _generation_request(job, choice)
        decoder = (RawDecoder(self.harmony, choice) if job.raw
                   else ChoiceDecoder(self.harmony, choice, job.tools))
        stopper = StopMatcher(job.stop) if job.stop else None
        interval = self.settings.stream_interval
        generation = Generation(job.started, deadline, self.settings.stream_idle_timeout)
        self.active[request.request_id] = generation
        stream = self.engine.generate(request)
        reason: str | None = None
        stop: str | None = None
        cached = 0
        pending: list[Event] = []
        unsent = 0
        next_step, feed = generation.next_step, decoder.feed  # the per-token loop: bound once
        try:
            while reason is None:
                delta = await next_step(stream)
                tokens = delta.token_ids
                unsent += len(tokens)
                reason = delta.finish_reason
                if delta.cached_tokens:
                    cached = delta.cached_tokens
                if stopper is None:
                    feed(tokens, pending, delta.logprobs)
                    hit = None
                else:
                    # only this step's events go through the stop matcher: those already
                    # pending (stream_interval > 1) went through it before, not again
                    fresh: list[Event] = []
                    feed(tokens, fresh, delta.logprobs)
                    hit = apply_stop(stopper, fresh)
                    pending += fresh
                if hit is not None:
                    metrics.ABORTS.labels("stop_string").inc()
                    decoder.stop_at(hit.item)
                    reason, stop = "stop", hit.stop
                elif decoder.failed:
                    reason = "stop"
                if pending and (unsent >= interval or reason):
                    yield pending
                    pending, unsent = [], 0
        finally:
            del self.active[request.request_id]
            await stream.aclose()  # before the engine finished: this aborts the request
            generation.observe_timing()
        tail = _ending(decoder, stopper, reason, stop, cached, request)
        _count(tail[-1], first_of_its_prompt=choice % job.n == 0)
        yield [*pending, *tail]

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


def _generation_request(job: Job, choice: int) -> GenerationRequest:
    options = job.options
    if options.seed is not None and choice:  # distinct but reproducible choices
        options = replace(options, seed=options.seed + choice)
    return GenerationRequest(f"{job.id}-{choice}", job.prompts[choice // job.n], options)


def _ending(decoder, stopper: StopMatcher | None, reason: str, stop: str | None, cached: int,
            request: GenerationRequest) -> list[Event]:
    """A choice's last events: its open item closed, held-back text released, Finish."""
    tail: list[Event] = []
    decoder.finish(reason, len(request.prompt_token_ids), tail, stop)
    if cached:
        finish = tail[-1]
        tail[-1] = replace(finish, usage=replace(finish.usage, cached_tokens=cached))
    if stopper is not None and stop is None:
        apply_stop(stopper, tail)  # releases held-back text before its item ends
    return tail


def _count(finish: Finish, first_of_its_prompt: bool) -> None:
    if finish.reason is EndReason.MALFORMED:
        metrics.HARMONY_PARSE_ERRORS.inc()
    if first_of_its_prompt:
        metrics.PROMPT_TOKENS.inc(finish.usage.prompt_tokens)
    metrics.COMPLETION_TOKENS.inc(finish.usage.completion_tokens)
    metrics.REASONING_TOKENS.inc(finish.usage.reasoning_tokens)
