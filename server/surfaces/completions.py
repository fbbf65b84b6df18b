"""Raw Completions (``/v1/completions``): text or token ids in, the raw continuation out.

No Harmony rendering and no Harmony parsing: a text prompt is encoded with the model's
vocabulary, where text that spells a Harmony special token (``<|start|>``) becomes that token
(this is the raw path), and the output text keeps the special tokens it generated. A batch
(several prompts) gives ``n`` choices per prompt; choice ``i`` continues prompt ``i // n``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator

from server import plan as p
from server.config import Settings
from server.errors import InvalidRequestError
from server.events import ContentDelta, Event, Finish
from server.harmony.encoding import Harmony
from server.pipeline import Job
from server.schemas.completions import CompletionCreateParams
from server.sse import DONE, choice_framer, data_frame, error_data_frame
from server.surfaces.chat import finish_reason


def _refuse_unsupported(request: CompletionCreateParams) -> None:
    if request.suffix is not None:
        raise InvalidRequestError("suffix is not supported: gpt-oss has no fill-in-the-middle "
                                  "mode", param="suffix")
    if request.best_of not in (None, 1, request.n):
        raise InvalidRequestError("best_of must equal n (each choice is returned)",
                                  param="best_of")
    if request.stream_options is not None and not request.stream:
        raise InvalidRequestError("stream_options is only allowed when stream is true",
                                  param="stream_options")


def prompts_of(request: CompletionCreateParams, harmony: Harmony) -> list[list[int]]:
    prompt = request.prompt
    if isinstance(prompt, str):
        batch: list = [prompt]
    elif prompt and all(isinstance(x, int) for x in prompt):
        batch = [prompt]  # one prompt of token ids
    else:
        batch = prompt
    if not batch or any(len(x) == 0 for x in batch):
        raise InvalidRequestError("prompt must not be empty", param="prompt")
    return [harmony.encode_completion(x) if isinstance(x, str) else list(x) for x in batch]


class CompletionsExchange:
    error_frame = staticmethod(error_data_frame)
    done = DONE

    def __init__(self, request: CompletionCreateParams, settings: Settings,
                 harmony: Harmony) -> None:
        self.request = request
        self.settings = settings
        self.harmony = harmony
        self.id = "cmpl-" + secrets.token_hex(16)
        self.created = int(time.time())
        self.stream = bool(request.stream)
        self.usages = []
        self.prompts: list[list[int]] = []

    def plan(self) -> p.Plan:
        request = self.request
        _refuse_unsupported(request)
        self.prompts = prompts_of(request, self.harmony)
        n = request.n or 1
        if len(self.prompts) * n > self.settings.max_n:
            raise InvalidRequestError(
                f"{len(self.prompts)} prompts x n={n} make more choices than --max-n "
                f"({self.settings.max_n}) allows", param="prompt")
        stop = [] if request.stop is None else (
            [request.stop] if isinstance(request.stop, str) else list(request.stop))
        return p.Plan(
            model=request.model, prompts=self.prompts, n=n, stop=stop, input_param="prompt",
            sampling=p.Sampling(
                max_tokens=request.max_tokens, temperature=request.temperature,
                top_p=request.top_p, presence_penalty=request.presence_penalty,
                frequency_penalty=request.frequency_penalty, seed=request.seed,
                logit_bias=request.logit_bias, logprobs=request.logprobs))

    def _echo(self, job: Job, choice: int) -> str:
        if not self.request.echo:
            return ""
        return self.harmony.encoding.decode(job.prompts[choice // job.n])

    def _logprobs(self, entries, offset: int) -> dict | None:
        """The legacy shape: parallel lists, ``text_offset`` counted in the choice's text."""
        if self.request.logprobs is None:
            return None
        tokens, offsets = [], []
        for text, *_ in entries:
            tokens.append(text)
            offsets.append(offset)
            offset += len(text)
        return {"tokens": tokens, "token_logprobs": [e[2] for e in entries],
                "top_logprobs": [{alt.decode("utf-8", "replace"): value for alt, value in e[3]}
                                 for e in entries], "text_offset": offsets}

    def usage(self, job: Job) -> dict:
        prompt = sum(len(x) for x in job.prompts)
        completion = sum(u.completion_tokens for u in self.usages)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    async def frames(self, job: Job, batches: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
        head = {"id": self.id, "object": "text_completion", "created": self.created,
                "model": job.model}
        frame = choice_framer(head)
        sent = [-1] * job.choices  # characters sent per choice (-1: not started: echo first)

        def chunk(choice: int, text: str, finish: str | None = None, entries=()) -> bytes:
            if sent[choice] < 0:
                sent[choice] = 0
                text = self._echo(job, choice) + text
            offset = sent[choice] + len(text) - sum(len(e[0]) for e in entries)
            sent[choice] += len(text)
            return frame({"index": choice, "text": text,
                          "logprobs": self._logprobs(entries, offset), "finish_reason": finish})

        async for batch in batches:
            out = []
            for event in batch:
                if type(event) is ContentDelta:
                    out.append(chunk(event.choice, event.text, entries=event.logprobs or ()))
                elif type(event) is Finish:
                    self.usages.append(event.usage)
                    out.append(chunk(event.choice, "", finish_reason(event)))
            if out:
                yield b"".join(out)
        options = self.request.stream_options
        if options is not None and options.include_usage:
            yield data_frame({**head, "choices": [], "usage": self.usage(job)})

    async def collect(self, job: Job, batches: AsyncIterator[list[Event]]) -> dict:
        texts: list[list[str]] = [[self._echo(job, c)] for c in range(job.choices)]
        entries: list[list] = [[] for _ in range(job.choices)]
        finishes: dict[int, str] = {}
        async for batch in batches:
            for event in batch:
                if type(event) is ContentDelta:
                    texts[event.choice].append(event.text)
                    entries[event.choice] += event.logprobs or ()
                elif type(event) is Finish:
                    self.usages.append(event.usage)
                    finishes[event.choice] = finish_reason(event)
        return {"id": self.id, "object": "text_completion", "created": self.created,
                "model": job.model,
                "choices": [{"index": c, "text": "".join(texts[c]),
                             "logprobs": self._logprobs(entries[c], len(texts[c][0])),
                             "finish_reason": finishes.get(c, "stop")}
                            for c in range(job.choices)],
                "usage": self.usage(job)}
