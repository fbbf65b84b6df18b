"""OpenAI Chat Completions: the adapter (request -> plan) and its two folds (stream, JSON).

Stream chunks are plain dicts serialised with orjson (the hot path); their shape is
``schemas.chat_response.ChatCompletionChunk``. Both folds read the same event batches, so a
stream's concatenated deltas always equal the non-stream message.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from server import plan as p
from server.config import Settings
from server.constraint import Constraint, final_grammar, plan_constraint
from server.errors import InvalidRequestError
from server.events import (
    ArgumentsDelta,
    ContentDelta,
    EndReason,
    Event,
    Finish,
    ItemKind,
    ItemStart,
    ReasoningDelta,
    Usage,
)
from server.limits import check_count
from server.pipeline import Job
from server.schemas.chat_request import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionNamedToolChoiceParam,
    ChatCompletionToolMessageParam,
    CompletionCreateParams,
    Content,
    ReasoningConfig,
)
from server.sse import DONE, choice_framer, data_frame, error_data_frame
from server.surfaces.common import coalesce, openai_logprobs, resolve_effort

# -- the adapter ------------------------------------------------------------------------------


def content_text(content: Content | None, param: str) -> str:
    """The text of a message's content; non-text parts are a 400 (gpt-oss reads text only)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content):
        if part.type != "text":
            raise InvalidRequestError(
                f"content part type '{part.type}' is not supported: gpt-oss reads text only",
                param=f"{param}.content.{i}.type")
        texts.append(part.text)
    return "".join(texts)


def _assistant(msg: ChatCompletionAssistantMessageParam, param: str) -> list[p.Message]:
    out = []
    reasoning = msg.reasoning_content or msg.reasoning
    if reasoning:  # the renderer drops it once a later final answer ended the turn
        out.append(p.reasoning(reasoning))
    text = content_text(msg.content, param)
    if text:
        out.append(p.preamble(text) if msg.tool_calls else p.answer(text))
    out += [p.call(c.function.name, c.function.arguments) for c in msg.tool_calls or ()]
    return out


def _tool(msg: ChatCompletionToolMessageParam, param: str, names: dict[str, str]) -> p.Message:
    name = names.get(msg.tool_call_id) or msg.name
    if not name:
        raise InvalidRequestError(
            f"tool message refers to tool_call_id '{msg.tool_call_id}', which no earlier "
            "assistant message made", param=f"{param}.tool_call_id")
    return p.tool_result(name, content_text(msg.content, param))


def conversation(request: CompletionCreateParams, settings: Settings) -> p.Conversation:
    effort = resolve_effort(request.reasoning_effort, "reasoning_effort",
                            request.reasoning.effort if request.reasoning else None,
                            "reasoning.effort", settings.reasoning_effort)
    tools = [] if request.tool_choice == "none" else [
        p.Tool(t.function.name, t.function.description or "", t.function.parameters,
               t.function.strict) for t in request.tools or ()]
    result = p.Conversation(effort, tools=tools)
    names: dict[str, str] = {}  # tool_call_id -> function name
    for i, msg in enumerate(request.messages):
        param = f"messages.{i}"
        if msg.role in ("system", "developer"):
            result.instructions.append(content_text(msg.content, param))
        elif msg.role == "user":
            result.messages.append(p.user(content_text(msg.content, param)))
        elif msg.role == "assistant":
            names.update((c.id, c.function.name) for c in msg.tool_calls or ())
            result.messages += _assistant(msg, param)
        else:
            result.messages.append(_tool(msg, param, names))
    return result


def _refuse_unsupported(request: CompletionCreateParams) -> None:
    if request.stream_options is not None and not request.stream:
        raise InvalidRequestError("stream_options is only allowed when stream is true",
                                  param="stream_options")
    if request.top_logprobs is not None and not request.logprobs:  # as OpenAI: never ignored
        raise InvalidRequestError("top_logprobs needs logprobs: true", param="top_logprobs")


def _constraint(request: CompletionCreateParams, tools: list[p.Tool],
                settings: Settings) -> Constraint | None:
    fmt = request.response_format
    spec = fmt.json_schema if fmt is not None else None
    final = final_grammar(fmt.type if fmt else None, spec.schema_ if spec else None,
                          spec.strict if spec else None, "response_format.json_schema.schema",
                          settings)
    choice = request.tool_choice
    named = None
    if isinstance(choice, ChatCompletionNamedToolChoiceParam):
        named = choice.function.get("name")
        if not isinstance(named, str):
            raise InvalidRequestError("tool_choice.function.name must be a string",
                                      param="tool_choice.function.name")
    return plan_constraint(tools, settings, final=final, required=choice == "required",
                           named=named, named_param="tool_choice.function.name",
                           tool_param=lambda i: f"tools.{i}.function.parameters")


def show_reasoning(include_reasoning: bool | None, reasoning: ReasoningConfig | None) -> bool:
    return include_reasoning is not False and not (reasoning is not None and reasoning.exclude)


def to_plan(request: CompletionCreateParams, settings: Settings) -> p.Plan:
    _refuse_unsupported(request)
    check_count(len(request.messages), settings.max_messages, "messages")
    stop = [] if request.stop is None else (
        [request.stop] if isinstance(request.stop, str) else list(request.stop))
    chat = conversation(request, settings)
    return p.Plan(
        model=request.model,
        conversation=chat,
        constraint=_constraint(request, chat.tools, settings),
        sampling=p.Sampling(
            max_tokens=request.max_completion_tokens or request.max_tokens,
            temperature=request.temperature, top_p=request.top_p, top_k=request.top_k,
            min_p=request.min_p, presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty, seed=request.seed,
            logit_bias=request.logit_bias,
            logprobs=(request.top_logprobs or 0) if request.logprobs else None),
        n=request.n or 1,
        stop=stop,
        show_reasoning=show_reasoning(request.include_reasoning, request.reasoning),
    )


# -- the folds --------------------------------------------------------------------------------


def reasoning_fields(mode: str, include: bool) -> tuple[str, ...]:
    """Message fields that carry reasoning: both names by default (see README)."""
    if not include:
        return ()
    return ("reasoning_content", "reasoning") if mode == "both" else (mode,)


def finish_reason(finish: Finish) -> str:
    if finish.reason is EndReason.LENGTH:
        return "length"
    return "tool_calls" if finish.tool_calls else "stop"


def usage_dict(usages: list[Usage]) -> dict:
    prompt = usages[0].prompt_tokens if usages else 0
    cached = max((u.cached_tokens for u in usages), default=0)
    completion = sum(u.completion_tokens for u in usages)
    reasoning = sum(u.reasoning_tokens for u in usages)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning}}


@dataclass(slots=True)
class _Message:
    reasoning: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    finish: Finish | None = None


class ChatExchange:
    """One chat completion request: its plan and its two folds."""

    error_frame = staticmethod(error_data_frame)
    done = DONE

    def __init__(self, request: CompletionCreateParams, settings: Settings) -> None:
        self.request = request
        self.settings = settings
        self.id = "chatcmpl-" + secrets.token_hex(16)
        self.created = int(time.time())
        self.stream = bool(request.stream)
        self.usages: list[Usage] = []

    def plan(self) -> p.Plan:
        self._plan = to_plan(self.request, self.settings)
        self.fields = reasoning_fields(self.settings.reasoning_field, self._plan.show_reasoning)
        return self._plan

    def _delta(self, event: Event, tool_index: int) -> dict | None:
        """The chunk delta for one event (None: nothing to send)."""
        kind = type(event)
        if kind is ContentDelta:
            return {"content": event.text}  # its logprobs go beside the delta (frames)
        if kind is ReasoningDelta:
            return {name: event.text for name in self.fields} or None
        if kind is ArgumentsDelta:
            return {"tool_calls": [{"index": tool_index, "function": {"arguments": event.text}}]}
        if kind is ItemStart and event.kind is ItemKind.TOOL_CALL:
            return {"tool_calls": [{"index": tool_index, "id": event.call_id, "type": "function",
                                    "function": {"name": event.name, "arguments": ""}}]}
        return None  # other item boundaries are not part of a chat stream

    async def frames(self, job: Job, batches: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
        """Serialized ChatCompletionChunk objects; the usage chunk last when asked for."""
        head = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": job.model}
        frame = choice_framer(head)
        started: set[int] = set()
        calls = [0] * job.choices  # tool calls started per choice
        async for batch in batches:
            out = []
            for event in coalesce(batch):
                finish = None
                if type(event) is Finish:
                    self.usages.append(event.usage)
                    delta, finish = {}, finish_reason(event)
                else:
                    if type(event) is ItemStart and event.kind is ItemKind.TOOL_CALL:
                        calls[event.choice] += 1
                    delta = self._delta(event, calls[event.choice] - 1)
                    if delta is None:
                        continue
                if event.choice not in started:
                    started.add(event.choice)
                    delta = {"role": "assistant", **delta}
                logprobs = None
                if type(event) is ContentDelta and event.logprobs is not None:
                    logprobs = {"content": openai_logprobs(event.logprobs), "refusal": None}
                choice = {"index": event.choice, "delta": delta, "logprobs": logprobs,
                          "finish_reason": finish}
                out.append(frame(choice))
            if out:
                yield b"".join(out)
        options = self.request.stream_options
        if options is not None and options.include_usage:
            yield data_frame({**head, "choices": [], "usage": usage_dict(self.usages)})

    async def collect(self, job: Job, batches: AsyncIterator[list[Event]]) -> dict:
        """The ChatCompletion object: a fold over the same events a stream is built from."""
        choices = [_Message() for _ in range(job.choices)]
        async for batch in batches:
            for event in batch:
                message = choices[event.choice]
                kind = type(event)
                if kind is ContentDelta:
                    message.content.append(event.text)
                    message.logprobs += event.logprobs or ()
                elif kind is ReasoningDelta:
                    message.reasoning.append(event.text)
                elif kind is ArgumentsDelta:
                    message.tool_calls[-1]["function"]["arguments"] += event.text
                elif kind is ItemStart and event.kind is ItemKind.TOOL_CALL:
                    message.tool_calls.append({"id": event.call_id, "type": "function",
                                               "function": {"name": event.name, "arguments": ""}})
                elif kind is Finish:
                    message.finish = event
                    self.usages.append(event.usage)
        return {
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": job.model,
            "choices": [self._choice(i, m) for i, m in enumerate(choices)],
            "usage": usage_dict([m.finish.usage for m in choices if m.finish]),
        }

    def _choice(self, index: int, message: _Message) -> dict:
        reasoning = "".join(message.reasoning) or None
        content = "".join(message.content)  # with tool calls, only a preamble; none: null
        body: dict = {"role": "assistant",
                      "content": content if content or not message.tool_calls else None}
        body.update({name: reasoning for name in self.fields})
        body["tool_calls"] = message.tool_calls or None
        body["refusal"] = None
        finish = finish_reason(message.finish) if message.finish else "stop"
        logprobs = None
        if self.request.logprobs:
            logprobs = {"content": openai_logprobs(message.logprobs), "refusal": None}
        return {"index": index, "message": body, "logprobs": logprobs, "finish_reason": finish}

