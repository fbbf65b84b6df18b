"""Stop strings: the cut must not depend on how the text is split into events, nor on how events
are batched into stream chunks (stream_interval) or tokens into engine steps (chunk_size)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.events import ContentDelta, Event, ReasoningDelta
from server.stops import StopMatcher, apply_stop
from tests.corpus import COMPLETIONS
from tests.unit.helpers import chat_collect, chat_exchange, scripted_pipeline


def cut(text: str, stops: list[str]) -> tuple[str, bool]:
    """The reference: read the text one character at a time and stop at the first stop string
    completed (the longest, if several complete at once); keep what comes before it."""
    for end in range(1, len(text) + 1):
        for stop in sorted(stops, key=len, reverse=True):
            if text[:end].endswith(stop):
                return text[: end - len(stop)], True
    return text, False


def _merged(events: list[Event]) -> list[tuple[str, str]]:
    """(kind, text) with empty texts dropped and neighbours of one kind joined."""
    out: list[tuple[str, str]] = []
    for event in events:
        kind = type(event).__name__
        if not event.text:
            continue
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + event.text)
        else:
            out.append((kind, event.text))
    return out


def _expected(events: list[Event], stops: list[str]) -> list[tuple[str, str]]:
    """Content runs between other events are cut on their own (held text is released when a
    non-content event follows, so a stop string never spans one); nothing after a hit."""
    out: list[Event] = []
    run = ""
    for event in [*events, None]:
        if isinstance(event, ContentDelta):
            run += event.text
            continue
        text, hit = cut(run, stops)
        out.append(ContentDelta(0, 0, text))
        if hit:
            break
        run = ""
        if event is not None:
            out.append(event)
    return _merged(out)


def _through_matcher(batches: list[list[Event]], stops: list[str]) -> tuple[list[Event], bool]:
    """What the pipeline does: each batch of new events through apply_stop once, then the tail."""
    stopper = StopMatcher(stops)
    out: list[Event] = []
    for batch in batches:
        events = list(batch)
        hit = apply_stop(stopper, events)
        out += events
        if hit:
            return out, True
    return [*out, ContentDelta(0, 0, stopper.flush())], False


def _batched(events: list[Event], sizes: list[int]) -> list[list[Event]]:
    batches, start = [], 0
    for size in sizes:
        batches.append(events[start: start + size])
        start += size
    return [b for b in batches if b] + ([events[start:]] if start < len(events) else [])


@pytest.mark.parametrize(("text", "stops", "expected"), [
    ("Hello! How can I help you today?", ["lo! H", "xyz"], "Hel"),
    ("Hello! How can I help you today?", ["w you"], "Hello! How can I help you today?"),
    ("It is 18°C and sunny in Paris.", ["18°C"], "It is "),
    ("The capital of France is Paris.", ["Paris."], "The capital of France is "),
    ("abcde", ["bcd", "c"], "ab"),       # "c" completes first
    ("abcde", ["bc", "abc"], ""),        # both complete at "c": the longer one wins
    ("aaab", ["aab"], "a"),              # a false start is released, the real one found
    ("abab", ["abc"], "abab"),           # held text released at the end
])
@pytest.mark.parametrize("piece", [1, 2, 3, 7, 100], ids=lambda k: f"piece{k}")
@pytest.mark.parametrize("batch", [1, 2, 3, 8], ids=lambda k: f"batch{k}")
def test_cut_does_not_depend_on_splitting(text, stops, expected, piece, batch):
    events = [ContentDelta(0, 0, text[i: i + piece]) for i in range(0, len(text), piece)]
    assert cut(text, stops)[0] == expected
    out, _ = _through_matcher(_batched(events, [batch] * len(events)), stops)
    assert "".join(e.text for e in out) == expected


_piece = st.one_of(
    st.builds(ContentDelta, st.just(0), st.just(0), st.text("ab°C", min_size=0, max_size=4)),
    st.builds(ReasoningDelta, st.just(0), st.just(0), st.text("ab", min_size=1, max_size=3)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(_piece, max_size=12),
       stops=st.lists(st.text("ab°C", min_size=1, max_size=4), min_size=1, max_size=3),
       sizes=st.lists(st.integers(1, 5), max_size=12))
def test_any_events_any_batching_match_the_reference(events, stops, sizes):
    out, _ = _through_matcher(_batched(events, sizes), stops)
    assert _merged(out) == _expected(events, stops)


# --- through the pipeline: every stream_interval x engine chunk size -------------------------

GREETING = ("<|channel|>analysis<|message|>The user greets me. I should answer briefly.<|end|>"
            "<|start|>assistant<|channel|>final<|message|>Hello! How can I help you today?"
            "<|return|>")
WEATHER = ("<|channel|>analysis<|message|>The tool says 18°C and sunny.<|end|><|start|>assistant"
           "<|channel|>final<|message|>It is 18°C and sunny in Paris. ☀️<|return|>")

CASES = [  # (completion, stops, expected content, a stop string was hit)
    (GREETING, ["Hello"], "", True),
    (GREETING, ["lo! H", "xyz"], "Hel", True),
    (GREETING, ["w can"], "Hello! Ho", True),
    (GREETING, ["w you"], "Hello! How can I help you today?", False),
    (GREETING, ["today?"], "Hello! How can I help you ", True),
    (GREETING, ["help", "How"], "Hello! ", True),
    (WEATHER, ["18°C"], "It is ", True),   # also in the reasoning, which it must not cut
    (WEATHER, ["°C"], "It is 18", True),
    (WEATHER, ["☀️"], "It is 18°C and sunny in Paris. ", True),
    (WEATHER, ["18°F"], "It is 18°C and sunny in Paris. ☀️", False),
    (COMPLETIONS["preamble_then_tool"], ["weather"], "Let me check the ", True),
]


@pytest.mark.parametrize("interval", [1, 2, 3, 8], ids=lambda k: f"interval{k}")
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7], ids=lambda k: f"chunk{k}")
async def test_pipeline_cuts_at_the_stop_for_every_batching(harmony, interval, chunk_size):
    for text, stops, expected, hit in CASES:
        pipeline = scripted_pipeline(harmony, text, chunk_size, interval)
        request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": stops}
        _, job = chat_exchange(pipeline, request)
        batches = [batch async for batch in pipeline.events(job)]
        content = "".join(e.text for b in batches for e in b if isinstance(e, ContentDelta))
        assert content == expected, (stops, batches)
        [choice] = (await chat_collect(pipeline, request))["choices"]
        assert choice["message"]["content"] == expected
        assert choice["finish_reason"] == "stop" and not choice["message"]["tool_calls"]
        if text == WEATHER:
            assert choice["message"]["reasoning_content"] == "The tool says 18°C and sunny."
        if not hit:
            assert pipeline.engine.aborted == [], "no stop string reached: the engine ran to its end"
