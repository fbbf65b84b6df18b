"""Decode generated tokens as plain text, with no Harmony parsing (raw ``/v1/completions``).

The whole output is one message item; Harmony's control tokens stay in the text as written
(``<|channel|>analysis<|message|>...``), because a raw client asked for the raw continuation.
The stop token that ended the turn (``<|return|>``, ``<|call|>``) ends the completion and is
not part of its text. Text is released at UTF-8 character boundaries: a character split over
two tokens waits for its second token.
"""

from __future__ import annotations

from openai_harmony import HarmonyError

from server.events import (
    ContentDelta,
    EndReason,
    Event,
    Finish,
    ItemEnd,
    ItemKind,
    ItemStart,
    Usage,
)
from server.harmony.encoding import Harmony

# a UTF-8 character spans at most 4 bytes; past that many pending tokens it cannot be one
_MAX_PENDING = 4


class RawDecoder:
    """The ChoiceDecoder's interface (feed, stop_at, finish) over plain text."""

    __slots__ = ("_encoding", "_choice", "_stops", "_pending", "open_item", "tokens", "failed")

    def __init__(self, harmony: Harmony, choice: int) -> None:
        self._encoding = harmony.encoding
        self._choice = choice
        self._stops = frozenset(harmony.stop_token_ids)
        self._pending: list[int] = []
        self.open_item: int | None = None
        self.tokens = 0
        self.failed = False  # never: raw text cannot be malformed

    def feed(self, token_ids: list[int], out: list[Event]) -> None:
        if self.open_item is None and token_ids:
            self.open_item = 0
            out.append(ItemStart(self._choice, 0, ItemKind.MESSAGE))
        for token in token_ids:
            self.tokens += 1
            if token in self._stops:
                continue  # ends the completion (the engine stops here), not part of the text
            self._pending.append(token)
            try:
                text = self._encoding.decode_utf8(self._pending)
            except HarmonyError:  # an incomplete UTF-8 character: wait for its other bytes
                if len(self._pending) < _MAX_PENDING:
                    continue
                text = self._encoding.decode(self._pending)  # invalid for good: replace
            self._pending.clear()
            if text:
                out.append(ContentDelta(self._choice, 0, text))

    def stop_at(self, item: int) -> None:
        self.open_item = item

    def finish(self, engine_reason: str, prompt_tokens: int, out: list[Event],
               stop: str | None = None) -> None:
        if self._pending and stop is None:
            out.append(ContentDelta(self._choice, 0, self._encoding.decode(self._pending)))
        if self.open_item is not None:
            out.append(ItemEnd(self._choice, 0, engine_reason == "length"))
        if engine_reason == "length":
            reason = EndReason.LENGTH
        elif stop is not None:
            reason = EndReason.STOP_STRING
        else:
            reason = EndReason.TURN_END
        out.append(Finish(self._choice, reason, Usage(prompt_tokens, self.tokens, 0), 0, stop))
