"""The neutral event vocabulary: what the Harmony decoder produces and every surface folds.

One choice's output is a sequence of items, never nested: a reasoning item (the analysis
channel), a message item (a final answer or a commentary preamble) or a tool call. Each opens
with ``ItemStart``, carries text deltas of its kind, and closes with ``ItemEnd``; ``Finish``
ends the choice with a neutral ``EndReason`` and its usage. Every event names its choice; items
are numbered from 0 within the choice. Surfaces (server/surfaces/) map these to their own words:
Chat's ``finish_reason``, Responses' ``status``, Anthropic's ``stop_reason``.

The pipeline guarantees: a delta belongs to the item opened last and not yet ended; every
started item ends before ``Finish``; ``Finish`` is the last event of its choice.

Events are values: nobody changes one once it is handed over. The text deltas are the one
exception in the making (they are not frozen, which also makes them ~3x cheaper to create, and
there is one per token): while a batch is still being filled, the decoder extends the text of
the delta it appended last instead of appending one per token (server.harmony.decode).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ItemKind(enum.Enum):
    REASONING = "reasoning"
    MESSAGE = "message"  # the final answer, or a preamble (commentary without a recipient)
    TOOL_CALL = "tool_call"


class EndReason(enum.Enum):
    TURN_END = "turn_end"  # the model ended its turn (<|return|>, or <|end|> of a final answer)
    TOOL_CALL = "tool_call"  # the turn ended with a call (<|call|>)
    LENGTH = "length"  # max tokens or the context ran out
    STOP_STRING = "stop_string"  # a client stop string matched (Finish.stop_string says which)
    MALFORMED = "malformed"  # the output stopped being valid Harmony; what was parsed stands


@dataclass(slots=True, frozen=True)
class ItemStart:
    choice: int
    item: int
    kind: ItemKind
    call_id: str = ""  # tool calls: the call's id (``call_...``)
    name: str = ""  # tool calls: the function name


@dataclass(slots=True)
class ReasoningDelta:
    choice: int
    item: int
    text: str


# One visible token's logprob: (its text in the content, its bytes, its logprob, the top
# alternatives as (bytes, logprob)). A token that ends mid-character has text "" and the token
# that completes the character carries it, so the texts concatenate to the content.
TokenLogprob = tuple[str, bytes, float, tuple[tuple[bytes, float], ...]]


@dataclass(slots=True)
class ContentDelta:
    choice: int
    item: int
    text: str
    logprobs: tuple[TokenLogprob, ...] | None = None  # when the request asked for them


@dataclass(slots=True)
class ArgumentsDelta:
    """Text of a tool call's JSON arguments, as the model wrote it."""

    choice: int
    item: int
    text: str


TextDelta = ReasoningDelta | ContentDelta | ArgumentsDelta


@dataclass(slots=True, frozen=True)
class ItemEnd:
    choice: int
    item: int
    truncated: bool = False  # closed by the end of generation (length), not by the model


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int = 0


@dataclass(slots=True, frozen=True)
class Finish:
    """The end of one choice. ``tool_calls`` counts the calls the choice made (Chat reports
    ``tool_calls`` as its finish reason whenever there was one, whatever ended the turn)."""

    choice: int
    reason: EndReason
    usage: Usage
    tool_calls: int = 0
    stop_string: str | None = None


Event = ItemStart | ReasoningDelta | ContentDelta | ArgumentsDelta | ItemEnd | Finish
