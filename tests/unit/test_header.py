"""server.harmony.header reads headers as openai_harmony's parser does: wherever it answers, the
answer is Harmony's; where it does not (HeaderError), the decoder asks Harmony."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai_harmony import HarmonyError, Role, StreamableParser

from server.harmony.header import HeaderError, parse_header

WELL_FORMED = [
    ("<|channel|>analysis", True, ("analysis", None)),
    ("<|channel|>final", True, ("final", None)),
    ("<|channel|>commentary", True, ("commentary", None)),
    ("<|channel|>commentary to=functions.get_weather <|constrain|>json", True,
     ("commentary", "functions.get_weather")),
    ("<|channel|>commentary to=functions.get_weather json", True,
     ("commentary", "functions.get_weather")),
    (" to=functions.get_weather<|channel|>commentary <|constrain|>json", True,
     ("commentary", "functions.get_weather")),
    ("<|channel|>commentary to=functions.lookup_stock<|constrain|>json", True,
     ("commentary", "functions.lookup_stock")),
    ("assistant<|channel|>final", False, ("final", None)),
    ("assistant<|channel|>analysis", False, ("analysis", None)),
    ("assistant<|channel|>commentary to=functions.f <|constrain|>json", False,
     ("commentary", "functions.f")),
    ("assistant to=functions.f<|channel|>commentary json", False, ("commentary", "functions.f")),
    ("assistant to=python<|channel|>analysis code", False, ("analysis", "python")),
]

PIECES = ["<|channel|>", "<|constrain|>", "analysis", "final", "commentary", "assistant", "user",
          "tool", "to=", "to=functions.get_weather", "functions.f", "json", "code", " ", "  ",
          "\t", "\n", "\x0b", "\x1c", "\u3000", "\u00a0", "<", "|", "x", "é", "<|end|>",
          "<|start|>", "<|return|>", "=", "."]


def harmony_reads(harmony, tokens: list[int], role_known: bool):
    """Harmony's reading of a header: (channel, recipient), or the error it raises."""
    parser = StreamableParser(harmony.encoding, role=Role.ASSISTANT if role_known else None)
    try:
        if not role_known:
            parser.process(harmony.special.start)
        for token in tokens:
            parser.process(token)
        parser.process(harmony.special.message)
    except HarmonyError as exc:
        return exc
    return parser.current_channel, parser.current_recipient


def ours(harmony, tokens: list[int], role_known: bool):
    text = b"".join(harmony.byte_table[t] for t in tokens).decode()
    return parse_header(text, role_known)


@pytest.mark.parametrize(("text", "role_known", "expected"), WELL_FORMED)
def test_the_headers_gpt_oss_writes_are_read_here(harmony, text, role_known, expected):
    tokens = harmony.encode_completion(text)
    assert ours(harmony, tokens, role_known) == expected
    assert harmony_reads(harmony, tokens, role_known) == expected


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PIECES), max_size=9), st.booleans())
def test_wherever_this_reader_answers_harmony_agrees(harmony, pieces, role_known):
    tokens = harmony.encode_completion("".join(pieces))
    try:
        answer = ours(harmony, tokens, role_known)
    except (HeaderError, UnicodeDecodeError):
        return  # the decoder asks Harmony (tests/unit/test_decode.py)
    assert harmony_reads(harmony, tokens, role_known) == answer
