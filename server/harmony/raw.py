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

    __slots__ = ("_harmony", "_encoding", "_choice", "_stops", "_pending", "_entries",
                 "open_item", "tokens", "failed")

    def __init__(self, harmony: Harmony, choice: int) -> None:
        self._harmony = harmony
        self._encoding = harmony.encoding
        self._entries: list | None = None  # logprobs of the pending tokens
        self._choice = choice
        self._stops = frozenset(harmony.stop_token_ids)
        self._pending: list[int] = []
        self.open_item: int | None = None
        self.tokens = 0
        self.failed = False  # never: raw text cannot be malformed

    def feed(self, token_ids: list[int], out: list[Event], logprobs: list | None = None) -> None:
        if self.open_item is None and token_ids:
            self.open_item = 0
            out.append(ItemStart(self._choice, 0, ItemKind.MESSAGE))
        for i, token in enumerate(token_ids):
            self.tokens += 1
            if token in self._stops:
                continue  # ends the completion (the engine stops here), not part of the text
            self._pending.append(token)
            if logprobs is not None:
                self._entry(token, logprobs[i])
            try:
                text = self._encoding.decode_utf8(self._pending)
            except HarmonyError:  # an incomplete UTF-8 character: wait for its other bytes
                if len(self._pending) < _MAX_PENDING:
                    continue
                text = self._encoding.decode(self._pending)  # invalid for good: replace
            self._pending.clear()
            if text:
                out.append(self._delta(text))

    def _entry(self, token: int, logprob) -> None:
        value, top = logprob
        token_bytes = self._harmony.token_bytes
        entries = self._entries = self._entries or []
        entries.append(("", token_bytes(token), value, tuple((token_bytes(t), v) for t, v in top)))

    def _delta(self, text: str) -> ContentDelta:
        """The text of the pending tokens, carried by the last of them (with logprobs)."""
        entries, self._entries = self._entries, None
        if entries:
            entries[-1] = (text, *entries[-1][1:])
        return ContentDelta(self._choice, 0, text, tuple(entries) if entries else None)

    def stop_at(self, item: int) -> None:
        self.open_item = item

    def finish(self, engine_reason: str, prompt_tokens: int, out: list[Event],
               stop: str | None = None) -> None:
        if self._pending and stop is None:
            out.append(self._delta(self._encoding.decode(self._pending)))
        if self.open_item is not None:
            out.append(ItemEnd(self._choice, 0, engine_reason == "length"))
        if engine_reason == "length":
            reason = EndReason.LENGTH
        elif stop is not None:
            reason = EndReason.STOP_STRING
        else:
            reason = EndReason.TURN_END
        out.append(Finish(self._choice, reason, Usage(prompt_tokens, self.tokens, 0), 0, stop))
