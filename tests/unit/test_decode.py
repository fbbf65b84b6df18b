"""The decoder: quirks, and random token sequences (special tokens included) never break it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.events import (
    ArgumentsDelta,
    ContentDelta,
    EndReason,
    Finish,
    ItemEnd,
    ItemKind,
    ItemStart,
    ReasoningDelta,
)
from server.harmony.decode import ChoiceDecoder, tool_name
from server.stops import StopMatcher

SPECIALS = [200002, 200003, 200005, 200006, 200007, 200008, 200012]
WORDS = [12194, 1212, 84083, 35644, 17196, 12606, 815, 316, 28, 44580, 775, 4103, 104, 254, 220]


def test_tool_name_quirks():
    declared = {"get_weather"}
    assert tool_name("functions.get_weather", declared) == "get_weather"
    assert tool_name("functions.get_weatherjson", declared) == "get_weather"
    assert tool_name("functions.other", declared) == "other"


_KINDS = {ReasoningDelta: ItemKind.REASONING, ContentDelta: ItemKind.MESSAGE,
          ArgumentsDelta: ItemKind.TOOL_CALL}


def assert_well_formed(events: list) -> Finish:
    """Items open and close in order, deltas belong to the open item and match its kind, every
    item ends before Finish, which comes last."""
    *body, finish = events
    assert isinstance(finish, Finish)
    open_item, kinds, calls = None, [], 0
    for event in body:
        if isinstance(event, ItemStart):
            assert open_item is None and event.item == len(kinds)
            open_item = event.item
            kinds.append(event.kind)
            if event.kind is ItemKind.TOOL_CALL:
                calls += 1
                assert event.call_id.startswith("call_") and event.name is not None
        elif isinstance(event, ItemEnd):
            assert event.item == open_item
            open_item = None
        else:
            assert event.item == open_item and kinds[open_item] is _KINDS[type(event)]
            assert isinstance(event.text, str) and event.text
    assert open_item is None
    assert finish.tool_calls == calls
    return finish


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(SPECIALS), st.sampled_from(WORDS),
                          st.integers(0, 200_000)), max_size=60),
       st.integers(1, 7))
def test_random_tokens_never_raise_and_events_are_well_formed(harmony, tokens, chunk):
    decoder = ChoiceDecoder(harmony, 0, ["get_weather"])
    events = []
    for i in range(0, len(tokens), chunk):
        decoder.feed(tokens[i:i + chunk], events)
    decoder.finish("stop", 3, events)
    finish = assert_well_formed(events)
    assert finish.reason in (EndReason.MALFORMED, EndReason.TOOL_CALL if finish.tool_calls
                             else EndReason.TURN_END)
    assert finish.usage.completion_tokens <= len(tokens)
    assert 0 <= finish.usage.reasoning_tokens <= finish.usage.completion_tokens


def _decode(harmony, text: str, engine_reason: str = "stop") -> list:
    decoder = ChoiceDecoder(harmony, 0, ["get_weather"])
    events: list = []
    for token in harmony.encode_completion(text):
        decoder.feed([token], events)
    decoder.finish(engine_reason, 1, events)
    return events


def test_items_in_order_with_their_kinds(harmony):
    events = _decode(harmony, "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant"
                              "<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant"
                              "<|channel|>commentary to=functions.get_weather <|constrain|>json"
                              "<|message|>{}<|call|>")
    finish = assert_well_formed(events)
    starts = [e.kind for e in events if isinstance(e, ItemStart)]
    assert starts == [ItemKind.REASONING, ItemKind.MESSAGE, ItemKind.TOOL_CALL]
    assert finish.reason is EndReason.TOOL_CALL and finish.tool_calls == 1


def test_text_without_any_header_is_shown_and_counted_malformed(harmony):
    for ending, engine_reason, reason in (("<|return|>", "stop", EndReason.MALFORMED),
                                          ("<|end|>", "stop", EndReason.MALFORMED),
                                          ("", "length", EndReason.LENGTH)):
        events = _decode(harmony, "Hello there, friend." + ending, engine_reason)
        finish = assert_well_formed(events)
        assert [type(e) for e in events] == [ItemStart, ContentDelta, ItemEnd, Finish]
        assert events[0].kind is ItemKind.MESSAGE
        assert events[1].text == "Hello there, friend."
        assert finish.reason is reason


def test_truncated_item_is_closed(harmony):
    events = _decode(harmony, "<|channel|>final<|message|>Half an ans", "length")
    finish = assert_well_formed(events)
    assert finish.reason is EndReason.LENGTH
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "Half an ans"


def test_stop_matcher_holds_back_possible_prefixes():
    m = StopMatcher(["END", "xyz"])
    assert m.feed("abc E") == ("abc ", None)
    assert m.feed("N") == ("", None)
    assert m.feed("x") == ("EN", None)  # "x" may begin "xyz": held
    m = StopMatcher(["END"])
    assert m.feed("foo EN") == ("foo ", None)
    assert m.feed("D bar") == ("", "END")
    m = StopMatcher(["END"])
    assert m.feed("E") == ("", None)
    assert m.flush() == "E"


def test_a_repeated_message_token_starts_a_new_item_with_the_same_header(harmony):
    """Random-weight models emit <|message|> again inside a body (the engine tests hold their
    streams open that way): tolerated as a new message, not as malformed output."""
    events = _decode(harmony, "<|channel|>final<|message|>one<|message|>two<|return|>")
    finish = assert_well_formed(events)
    assert [e.text for e in events if isinstance(e, ContentDelta)] == ["one", "two"]
    assert finish.reason is EndReason.TURN_END


def test_a_header_that_never_ends_is_not_parsed_forever(harmony, monkeypatch):
    """Past its bound a header is only kept, never read (a late <|message|> opens nothing);
    the text still comes out, as headerless text, at the end."""
    from server.harmony import decode

    read = []
    monkeypatch.setattr(decode, "parse_header", lambda *a: read.append(a) or (None, None))
    words = harmony.encode_completion(" word" * 400)
    decoder = ChoiceDecoder(harmony, 0)
    events: list = []
    decoder.feed(words, events)
    assert events == [] and decoder.tokens == len(words) and decoder._max_header < 100
    decoder.feed(harmony.encode_completion("<|message|> more"), events)
    assert events == [] and read == []
    decoder = ChoiceDecoder(harmony, 0)
    decoder.feed(words, events)
    decoder.finish("length", 1, events)
    assert_well_formed(events)
    assert events[1].text == " word" * 400


@pytest.mark.parametrize("length", [64, 128])
def test_the_header_bound_fits_a_call_to_the_longest_declared_name(harmony, length):
    """A call header written one token per character, to a declared name as long as a surface
    allows (Chat and Responses: 64; Messages: 128), is still read as that call."""
    name = ("get_" + "weather_" * 20)[:length]
    text = f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>"
    tokens = []
    for piece in text.replace("<|", "\0<|").replace("|>", "|>\0").split("\0"):
        tokens += (harmony.encode_completion(piece) if piece.startswith("<|")
                   else [t for c in piece for t in harmony.encode_completion(c)])
    tokens += harmony.encode_completion('{"a": 1}<|call|>')
    decoder = ChoiceDecoder(harmony, 0, [name, "other"])
    events: list = []
    decoder.feed(tokens, events)
    decoder.finish("stop", 1, events)
    [start] = [e for e in events if isinstance(e, ItemStart)]
    assert start.kind is ItemKind.TOOL_CALL and start.name == name
    assert events[-1].reason is EndReason.TOOL_CALL


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40), st.text(max_size=40), st.integers(1, 5))
def test_bodies_decode_to_the_text_that_was_encoded(harmony, reasoning, answer, chunk):
    """Message bodies are decoded outside Harmony's parser: any text (multi-byte characters
    split over tokens included) comes back exactly, whatever the chunking."""
    reasoning, answer = reasoning.replace("<|", "<"), answer.replace("<|", "<")
    tokens = [*harmony.encode_completion("<|channel|>analysis<|message|>"),
              *harmony.plain_tokens(reasoning),
              *harmony.encode_completion("<|end|><|start|>assistant<|channel|>final<|message|>"),
              *harmony.plain_tokens(answer), harmony.special.return_]
    decoder = ChoiceDecoder(harmony, 0)
    events: list = []
    for i in range(0, len(tokens), chunk):
        decoder.feed(tokens[i:i + chunk], events)
    decoder.finish("stop", 1, events)
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == reasoning
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == answer
    assert events[-1].reason is EndReason.TURN_END


def test_invalid_utf8_in_a_body_is_replaced_not_lost(harmony):
    table = harmony.byte_table
    lone = {table[t][0]: t for t in range(200_000) if len(table[t]) == 1}
    tokens = [*harmony.encode_completion("<|channel|>final<|message|>"), lone[0xE6], lone[0x41],
              lone[0x80], harmony.special.return_]
    decoder = ChoiceDecoder(harmony, 0)
    events: list = []
    decoder.feed(tokens, events)
    decoder.finish("stop", 1, events)
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "\ufffdA\ufffd"


def test_a_batch_holds_one_delta_per_item_and_handed_over_batches_never_change(harmony):
    """While a batch is filled, body tokens extend the item's last delta (stream interval > 1
    costs one event per item, not per token); a batch already handed over (a new list) is
    never touched again."""
    tokens = [*harmony.encode_completion("<|channel|>analysis<|message|>"),
              *harmony.plain_tokens("think about it"),
              *harmony.encode_completion("<|end|><|start|>assistant<|channel|>final<|message|>"),
              *harmony.plain_tokens("Paris is the capital"), harmony.special.return_]
    split = len(tokens) - 3  # two answer tokens and <|return|> go in the second batch
    decoder = ChoiceDecoder(harmony, 0)
    first: list = []
    for token in tokens[:split]:
        decoder.feed([token], first)
    handed_over = [(type(e), getattr(e, "text", None)) for e in first]
    second: list = []
    for token in tokens[split:]:
        decoder.feed([token], second)
    decoder.finish("stop", 1, second)
    assert [(type(e), getattr(e, "text", None)) for e in first] == handed_over
    kinds = [type(e) for e in first + second]
    assert kinds.count(ReasoningDelta) == 1
    assert kinds.count(ContentDelta) == 2  # one per batch
    texts = "".join(e.text for e in first + second if isinstance(e, ContentDelta))
    assert texts == "Paris is the capital"
    assert [e.text for e in first if isinstance(e, ReasoningDelta)] == ["think about it"]
