"""Read a generated message header (channel and recipient) the way openai_harmony's parser does.

Harmony's ``StreamableParser`` costs ~18 us for every header token and ~100 us at each
``<|message|>`` (measured: oss-harmony 0.0.11), ~0.3 ms a response for two short headers.
This is the same reading in plain Python: the header's text (special tokens as their text) has
its ``<|channel|>`` value cut out, ``<|constrain|>`` split off, and the rest split on ASCII
whitespace into an optional role, a recipient and a content type. Anything else (a second
channel marker, another special token, an unknown role alone) raises ``HeaderError``, and the
decoder then asks Harmony's parser, which stays the authority on odd headers
(tests/unit/test_header.py checks that the two agree wherever this one answers).
"""

from __future__ import annotations

import re

CHANNEL = "<|channel|>"
CONSTRAIN = "<|constrain|>"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})

# Rust's char::is_whitespace (Unicode White_Space), for the channel's end and trim(); Python's
# str.isspace also counts U+001C-U+001F.
_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                        "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_TRIM = "".join(sorted(_WHITESPACE))
_ASCII_WHITESPACE = re.compile("[ \t\n\x0c\r]+")  # Rust's split_ascii_whitespace


class HeaderError(ValueError):
    """A header this reader does not read (Harmony's parser decides what it is)."""


def parse_header(text: str, role_known: bool) -> tuple[str | None, str | None]:
    """(channel, recipient) of a header's text; ``role_known``: the role was not written
    (the first message of a completion), else the text starts with it."""
    if text.count(CHANNEL) > 1:
        raise HeaderError("two channel markers")
    channel = None
    at = text.find(CHANNEL)
    if at >= 0:
        rest = text[at + len(CHANNEL):]
        end = next((i for i, c in enumerate(rest) if c in _WHITESPACE or c == "<"), len(rest))
        if end == 0:
            raise HeaderError("a channel marker with no channel")
        channel = rest[:end]
        text = text[:at] + rest[end:]
    text = text.strip(_TRIM)
    if CONSTRAIN in text:
        text = text.replace(CONSTRAIN, " " + CONSTRAIN).strip(_TRIM)
    parts = [part for part in _ASCII_WHITESPACE.split(text) if part]
    if any("<|" in part.removeprefix(CONSTRAIN) for part in parts):
        raise HeaderError("a special token where none belongs")
    role = "assistant"
    if not role_known:
        if not parts:
            raise HeaderError("no role")
        role = parts[0]
        if role not in ROLES:
            if len(parts) == 1 and not role.startswith("to="):
                raise HeaderError(f"unknown role {role!r}")
            parts.pop(0)
            role = "tool"
    if parts and parts[0] == role:
        parts.pop(0)
    recipient = None
    if parts:
        count, last = len(parts), parts.pop()
        if last.startswith("to="):
            recipient = last[3:]
        elif count == 1:
            recipient = last
        else:  # the last part is the content type; the one before it the recipient
            before = parts.pop()
            recipient = before[3:] if before.startswith("to=") else before
    if parts:
        raise HeaderError(f"unexpected text in the header: {' '.join(parts)!r}")
    return channel, recipient
