"""Decode generated Harmony tokens into events, one token at a time.

The openai_harmony ``StreamableParser`` is fed every token individually (vLLM hands over several
tokens per step under load; reading the parser once per chunk loses text). After each token we
ask only what changed: a ``<|message|>`` token opens a message whose header (channel,
recipient) is now known; ``<|end|>``/``<|call|>``/``<|return|>`` close it; any other token in a
message body yields the parser's text delta (which holds back split UTF-8 bytes).

Routing: ``analysis`` -> reasoning; ``final`` and recipient-less ``commentary`` (a preamble)
-> content; a ``functions.*`` (or declared tool) recipient -> a tool call, whichever channel or
header placement carried it; any other header text is treated as content. A parse error (or a
control token inside a message body, which the parser would pass on as text) never escapes:
decoding stops, what was parsed stands, and ``failed`` tells the caller to stop.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Collection

from openai_harmony import HarmonyError, Role, StreamableParser

from server.events import (
    ContentDelta,
    Event,
    Finish,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
)
from server.harmony.encoding import Harmony

log = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_letters + string.digits
_REASONING, _CONTENT, _TOOL = 0, 1, 2


def new_tool_call_id() -> str:
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

    __slots__ = ("_parser", "_special", "_message_ends", "_choice", "_tools", "_route",
                 "_tool_index", "tokens", "reasoning_tokens", "failed", "tool_calls")

    def __init__(self, harmony: Harmony, choice: int, declared_tools: Collection[str] = ()):
        self._parser = StreamableParser(harmony.encoding, role=Role.ASSISTANT)._inner
        self._special = harmony.special
        self._message_ends = harmony.special.message_ends
        self._choice = choice
        self._tools = frozenset(declared_tools)
        self._route: int | None = None  # where the open message's text goes; None: between
        self._tool_index = -1
        self.tokens = 0
        self.reasoning_tokens = 0
        self.tool_calls = 0
        self.failed = False

    def feed(self, token_ids: list[int], out: list[Event]) -> None:
        """Process tokens, appending the events they produce to ``out``."""
        if self.failed:
            return
        parser = self._parser
        for token in token_ids:
            self.tokens += 1
            try:
                parser.process(token)
            except HarmonyError as exc:
                log.warning("malformed Harmony output (choice %d, token %d): %s",
                            self._choice, token, exc)
                self.failed = True
                return
            if token == self._special.message:
                self._open_message(out)
            elif token in self._message_ends:
                self._route = None
            elif self._route is not None:
                if token >= self._special.first:  # <|start|>, <|channel|>... inside a body
                    log.warning("malformed Harmony output (choice %d): control token %d inside "
                                "a message", self._choice, token)
                    self.failed = True
                    return
                if self._route == _REASONING:
                    self.reasoning_tokens += 1
                delta = parser.last_content_delta
                if delta:
                    out.append(self._delta(delta))

    def _open_message(self, out: list[Event]) -> None:
        recipient = self._parser.current_recipient
        channel = self._parser.current_channel
        if recipient and (recipient.startswith("functions.") or recipient in self._tools):
            self._route = _TOOL
            self._tool_index += 1
            self.tool_calls += 1
            out.append(ToolCallStart(self._choice, self._tool_index, new_tool_call_id(),
                                     tool_name(recipient, self._tools)))
        elif channel == "analysis":
            self._route = _REASONING
        else:  # final, a commentary preamble, or a channel-less message
            self._route = _CONTENT

    def _delta(self, text: str) -> Event:
        if self._route == _CONTENT:
            return ContentDelta(self._choice, text)
        if self._route == _REASONING:
            return ReasoningDelta(self._choice, text)
        return ToolCallArgumentsDelta(self._choice, self._tool_index, text)

    def finish(self, engine_reason: str, prompt_tokens: int) -> Finish:
        """The Finish event: ``length`` wins, then ``tool_calls`` if any call was made."""
        if engine_reason == "length":
            reason = "length"
        elif self.tool_calls:
            reason = "tool_calls"
        else:
            reason = "stop"
        usage = Usage(prompt_tokens, self.tokens, self.reasoning_tokens)
        return Finish(self._choice, reason, usage)
