"""The decoder: quirks, and random token sequences (special tokens included) never break it."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.events import ContentDelta, ReasoningDelta, ToolCallArgumentsDelta, ToolCallStart
from server.harmony.decode import ChoiceDecoder, tool_name
from server.stops import StopMatcher

SPECIALS = [200002, 200003, 200005, 200006, 200007, 200008, 200012]
WORDS = [12194, 1212, 84083, 35644, 17196, 12606, 815, 316, 28, 44580, 775, 4103, 104, 254, 220]


def test_tool_name_quirks():
    declared = {"get_weather"}
    assert tool_name("functions.get_weather", declared) == "get_weather"
    assert tool_name("functions.get_weatherjson", declared) == "get_weather"
    assert tool_name("functions.other", declared) == "other"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(SPECIALS), st.sampled_from(WORDS),
                          st.integers(0, 200_000)), max_size=60),
       st.integers(1, 7))
def test_random_tokens_never_raise_and_events_are_well_formed(harmony, tokens, chunk):
    decoder = ChoiceDecoder(harmony, 0, ["get_weather"])
    events = []
    for i in range(0, len(tokens), chunk):
        decoder.feed(tokens[i:i + chunk], events)
    finish = decoder.finish("stop", 3)
    started = set()
    for event in events:
        assert isinstance(event, (ContentDelta, ReasoningDelta, ToolCallStart,
                                  ToolCallArgumentsDelta))
        if isinstance(event, ToolCallStart):
            assert event.index == len(started) and event.id.startswith("call_")
            started.add(event.index)
        elif isinstance(event, ToolCallArgumentsDelta):
            assert event.index in started
        else:
            assert isinstance(event.text, str) and event.text
    assert finish.reason == ("tool_calls" if started else "stop")
    assert finish.usage.completion_tokens <= len(tokens)
    assert 0 <= finish.usage.reasoning_tokens <= finish.usage.completion_tokens


def test_stop_matcher_holds_back_possible_prefixes():
    m = StopMatcher(["END", "xyz"])
    assert m.feed("abc E") == ("abc ", False)
    assert m.feed("N") == ("", False)
    assert m.feed("x") == ("EN", False)  # "x" may begin "xyz": held
    m = StopMatcher(["END"])
    assert m.feed("foo EN") == ("foo ", False)
    assert m.feed("D bar") == ("", True)
    m = StopMatcher(["END"])
    assert m.feed("E") == ("", False)
    assert m.flush() == "E"
