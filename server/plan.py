"""The surface-neutral request plan: what every API surface's adapter produces.

A plan holds the conversation in Harmony terms (the system settings, the developer's
instructions, function tools, and messages with their channels and recipients), the sampling
options, stop strings, n, whether to show reasoning, and a slot for a decoding constraint. The
pipeline, the renderer and the limits read plans only: nothing below the adapters
(server/surfaces/) knows which API asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.constraint import Constraint

# Harmony authors of history messages
USER, ASSISTANT = "user", "assistant"
# Harmony channels
ANALYSIS, COMMENTARY, FINAL = "analysis", "commentary", "final"


@dataclass(slots=True, frozen=True)
class Tool:
    """A function tool, rendered into the developer message's ``functions`` namespace."""

    name: str
    description: str = ""
    parameters: dict | None = None  # a JSON schema
    strict: bool | None = None


@dataclass(slots=True, frozen=True)
class Message:
    """One Harmony message of the history.

    ``author`` is ``user``, ``assistant``, or ``functions.NAME`` for a tool's result.
    ``recipient`` is ``functions.NAME`` on an assistant's call, ``assistant`` on a tool result.
    """

    author: str
    text: str
    channel: str | None = None
    recipient: str | None = None


def user(text: str) -> Message:
    return Message(USER, text)


def reasoning(text: str) -> Message:
    return Message(ASSISTANT, text, ANALYSIS)


def answer(text: str) -> Message:
    return Message(ASSISTANT, text, FINAL)


def preamble(text: str) -> Message:
    """Assistant text before a tool call (commentary without a recipient)."""
    return Message(ASSISTANT, text, COMMENTARY)


def call(name: str, arguments: str) -> Message:
    return Message(ASSISTANT, arguments, COMMENTARY, f"functions.{name}")


def tool_result(name: str, text: str) -> Message:
    return Message(f"functions.{name}", text, COMMENTARY, ASSISTANT)


@dataclass(slots=True)
class Conversation:
    effort: str  # low | medium | high
    instructions: list[str] = field(default_factory=list)  # system/developer text, in order
    tools: list[Tool] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


@dataclass(slots=True)
class Sampling:
    """What the client asked for; the pipeline fills in defaults and caps max_tokens."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: int | None = None  # None: none; k: each visible token's logprob and the top k


@dataclass(slots=True)
class Plan:
    """One request, surface-neutral. ``conversation`` is rendered with Harmony; raw
    ``prompts`` (token ids, raw Completions: one or a batch) are generated as they are and
    decoded without Harmony. ``n`` choices are generated for each prompt."""

    model: str
    conversation: Conversation | None = None
    prompts: list[list[int]] | None = None
    sampling: Sampling = field(default_factory=Sampling)
    n: int = 1
    stop: list[str] = field(default_factory=list)
    show_reasoning: bool = True
    constraint: Constraint | None = None  # what decoding must guarantee; None: free
    # the request fields errors name: the input (messages / input / prompt) and the stop list
    input_param: str = "messages"
    stop_param: str = "stop"
