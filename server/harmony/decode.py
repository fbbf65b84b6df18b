"""Decode generated Harmony tokens into items and deltas (server.events), one token at a time.

Tokens are read one at a time (vLLM hands over several per step under load). A header's tokens
are collected until ``<|message|>``, then read by server.harmony.header (Harmony's own parser
when that reader cannot: Harmony stays the authority on odd headers); an item opens with the
header's channel and recipient. A message body is decoded here, token bytes through an
incremental UTF-8 decoder (split characters wait for their last byte; invalid bytes become
U+FFFD), until ``<|end|>``/``<|call|>``/``<|return|>`` closes the item; after ``<|end|>`` the
next message must begin with ``<|start|>`` and its role. Harmony's ``StreamableParser`` would do
the same at ~1 us per body token, ~18 us per header token and ~100 us per header (measured),
and ~55 us to create one per choice.

Routing: ``analysis`` -> a reasoning item; ``final`` and recipient-less ``commentary`` (a
preamble) -> a message item; a ``functions.*`` (or declared tool) recipient -> a tool call,
whichever channel or header placement carried it; any other header is treated as a message.
A parse error (or a control token inside a message body) never escapes: decoding stops, what
was parsed stands, and ``failed`` tells the caller to stop. Text with no Harmony header at all
(a confused model: ``Hello<|return|>``) is shown as a message and counted as malformed rather
than lost.
"""

from __future__ import annotations

import codecs
import logging
import secrets
import string
from collections.abc import Collection

from openai_harmony import HarmonyError, Role, StreamableParser

from server.events import (
    ArgumentsDelta,
    ContentDelta,
    EndReason,
    Event,
    Finish,
    ItemEnd,
    ItemKind,
    ItemStart,
    ReasoningDelta,
    Usage,
)
from server.harmony.encoding import Harmony
from server.harmony.header import HeaderError, parse_header

log = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_letters + string.digits
_DELTAS = {ItemKind.REASONING: ReasoningDelta, ItemKind.MESSAGE: ContentDelta,
           ItemKind.TOOL_CALL: ArgumentsDelta}
# A first header longer than its bound is no header (a model writing text with no Harmony
# header): past it the tokens are only kept, for the headerless-text fallback, and never read,
# which would end in Harmony's parser at ~18 us a token. A real header is its fixed part (role,
# channel, `to=functions.`, content type: under HEADER_TOKENS) and a recipient, at most one
# token per character of a declared tool's name (or of a built-in tool's, for which
# HEADER_TOKENS more is room enough).
HEADER_TOKENS = 32


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def tool_name(recipient: str, declared: Collection[str]) -> str:
    """The function name a recipient addresses, tolerating known gpt-oss quirks.

    ``functions.get_weather`` -> ``get_weather``; ``functions.get_weatherjson`` (the content
    type glued to the name) -> ``get_weather`` when that is a declared tool.
    """
    name = recipient.removeprefix("functions.")
    for suffix in ("<|constrain|>json", "json"):
        if name not in declared and name.endswith(suffix) and name[: -len(suffix)] in declared:
            return name[: -len(suffix)]
    return name.strip()


class ChoiceDecoder:
    """Turns one choice's generated tokens into events, and counts its usage."""

    __slots__ = ("_harmony", "_special", "_message_ends", "_first_special", "_bytes", "_choice",
                 "_tools", "_max_header", "_delta", "_utf8", "_header", "_pending",
                 "_expect_start", "_role_known", "_last_header", "_kinds", "_partial", "_last",
                 "open_item", "tokens", "reasoning_tokens", "failed", "tool_calls")

    def __init__(self, harmony: Harmony, choice: int, declared_tools: Collection[str] = ()):
        self._harmony = harmony
        self._special = harmony.special
        self._message_ends = harmony.special.message_ends
        self._first_special = harmony.special.first
        self._bytes = harmony.byte_table
        self._choice = choice
        self._tools = frozenset(declared_tools)
        self._max_header = HEADER_TOKENS + max(map(len, self._tools), default=HEADER_TOKENS)
        self._delta: type | None = None  # the delta class of the open item; None: between items
        self._utf8 = None  # the open item's incremental UTF-8 decode
        # the header being read; before the first item it is also kept as _header, for the
        # headerless-text fallback (None once an item opened)
        self._header: list[int] | None = []
        self._pending: list[int] = self._header
        self._expect_start = False  # after a message's end: the next one starts with <|start|>
        self._role_known = True  # the first message's role (assistant) is not written
        self._last_header: tuple[str | None, str | None] = (None, None)
        self._kinds: list[ItemKind] = []  # of each item opened so far
        self._partial: list = []  # logprobs of content tokens that ended mid-character
        # the text delta appended last: while it is still the last event of the batch being
        # filled, the next body token of its item extends it (one delta per item and batch)
        self._last = None
        self.open_item: int | None = None
        self.tokens = 0
        self.reasoning_tokens = 0
        self.tool_calls = 0
        self.failed = False

    def feed(self, token_ids: list[int], out: list[Event], logprobs: list | None = None) -> None:
        """Process tokens, appending the events they produce to ``out``; ``logprobs`` (one
        per token, from the engine) are attached to the visible content's deltas."""
        if self.failed:
            return
        for i, token in enumerate(token_ids):
            self.tokens += 1
            delta = self._delta
            if delta is None:  # a header (or text before any)
                if not self._header_token(token, out):
                    return
            elif token >= self._first_special:
                if not self._body_ends(token, out):
                    return
            else:  # a message body's token
                if delta is ReasoningDelta:
                    self.reasoning_tokens += 1
                text = self._utf8(self._bytes[token])
                if logprobs is not None and delta is ContentDelta:
                    self._content_with_logprobs(token, text, logprobs[i], out)
                elif text:
                    last = self._last
                    if out and out[-1] is last:  # the batch's last event is this item's text
                        last.text += text
                    else:
                        self._last = delta(self._choice, self.open_item, text)
                        out.append(self._last)

    def _header_token(self, token: int, out: list[Event]) -> bool:
        """A token between messages; False if the output is malformed."""
        header = self._header
        if header is not None and len(header) >= self._max_header:
            header.append(token)  # no item will open: shown as text at the end
            return True
        if self._expect_start:
            if token != self._special.start:
                return self._malformed(f"token {token} where <|start|> belongs")
            self._expect_start = False
            return True
        if token != self._special.message:
            self._pending.append(token)
            return True
        tokens, self._pending = self._pending, []
        try:
            channel, recipient = self._read_header(tokens)
        except HarmonyError as exc:
            return self._malformed(str(exc))
        self._open(out, channel, recipient)
        return True

    def _read_header(self, tokens: list[int]) -> tuple[str | None, str | None]:
        """(channel, recipient): read here, or by Harmony's parser when this reader cannot."""
        table = self._bytes
        try:
            if any(token >= len(table) or not table[token] for token in tokens):
                raise HeaderError("a token outside the vocabulary")
            return parse_header(b"".join([table[t] for t in tokens]).decode(), self._role_known)
        except (HeaderError, UnicodeDecodeError):
            parser = StreamableParser(self._harmony.encoding,
                                      role=Role.ASSISTANT if self._role_known else None)._inner
            for token in ([] if self._role_known else [self._special.start]) + tokens:
                parser.process(token)
            parser.process(self._special.message)
            return parser.current_channel, parser.current_recipient

    def _malformed(self, why: str) -> bool:
        log.warning("malformed Harmony output (choice %d): %s", self._choice, why)
        self.failed = True
        return False

    def _body_ends(self, token: int, out: list[Event]) -> bool:
        """A control token inside a body: the end of the message (or, tolerated, a second
        ``<|message|>`` under the same header); False for any other (malformed)."""
        if token not in self._message_ends and token != self._special.message:
            return self._malformed(f"control token {token} inside a message")
        out.append(ItemEnd(self._choice, self.open_item))
        self.open_item, self._delta = None, None
        if token == self._special.message:
            self._open(out, *self._last_header)
        else:  # the next message starts with <|start|> and its role
            self._expect_start, self._role_known = True, False
        return True

    def _content_with_logprobs(self, token: int, text: str, logprob, out: list[Event]) -> None:
        """A content token's delta with its logprob; a token that ends mid-character waits
        for the one that completes it, which carries the text."""
        value, top = logprob
        token_bytes = self._harmony.token_bytes
        entry = ("", token_bytes(token), value, tuple((token_bytes(t), v) for t, v in top))
        self._partial.append(entry)
        if text:
            entries = [*self._partial[:-1], (text, *entry[1:])]
            self._partial = []
            out.append(ContentDelta(self._choice, self.open_item, text, tuple(entries)))

    def _open(self, out: list[Event], channel: str | None, recipient: str | None) -> None:
        self._last_header = (channel, recipient)
        item = self.open_item = len(self._kinds)
        self._header = None
        if recipient and (recipient.startswith("functions.") or recipient in self._tools):
            self.tool_calls += 1
            out.append(ItemStart(self._choice, item, ItemKind.TOOL_CALL, new_call_id(),
                                 tool_name(recipient, self._tools)))
            kind = ItemKind.TOOL_CALL
        else:  # analysis; final, a commentary preamble, or a channel-less message
            kind = ItemKind.REASONING if channel == "analysis" else ItemKind.MESSAGE
            out.append(ItemStart(self._choice, item, kind))
        self._kinds.append(kind)
        self._delta = _DELTAS[kind]
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace").decode

    def stop_at(self, item: int) -> None:
        """A stop string matched in ``item``: it is the last one shown, and still open."""
        self.failed = True  # decode nothing more
        self.open_item = item
        self.tool_calls = self._kinds[: item + 1].count(ItemKind.TOOL_CALL)

    def _headerless_text(self, out: list[Event]) -> bool:
        """Show text generated with no Harmony header at all as a message; True if there was."""
        tokens = self._header or []
        if tokens and tokens[-1] in self._message_ends:
            tokens = tokens[:-1]
        if not tokens or any(t >= self._special.first for t in tokens):
            return False
        out += [ItemStart(self._choice, 0, ItemKind.MESSAGE),
                ContentDelta(self._choice, 0, self._harmony.encoding.decode(tokens)),
                ItemEnd(self._choice, 0)]
        self._header = None
        return True

    def finish(self, engine_reason: str, prompt_tokens: int, out: list[Event],
               stop: str | None = None) -> None:
        """Close the open item and append the Finish event: ``length`` wins, then a stop
        string, then a malformed output, then a call; else the turn ended."""
        if self.open_item is not None:
            out.append(ItemEnd(self._choice, self.open_item, engine_reason == "length"))
            self.open_item = None
        if self._headerless_text(out):
            self.failed = True
        if engine_reason == "length":
            reason = EndReason.LENGTH
        elif stop is not None:
            reason = EndReason.STOP_STRING
        elif self.failed:
            reason = EndReason.MALFORMED
        elif self.tool_calls:
            reason = EndReason.TOOL_CALL
        else:
            reason = EndReason.TURN_END
        usage = Usage(prompt_tokens, self.tokens, self.reasoning_tokens)
        out.append(Finish(self._choice, reason, usage, self.tool_calls, stop))
