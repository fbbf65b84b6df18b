"""Incremental rendering (server.harmony.render_cache) equals the full render, and is bounded.

The property: over generated sequences of conversations, each extending, editing or replacing the
one before (new messages, a final answer that drops earlier reasoning, other tools, effort or
instructions, another owner), the cache's prompt is the full render's, token for token, at any
byte bound (eviction included) and in the event-loop-friendly async variant too.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import plan as p
from server.harmony.render import render_conversation
from server.harmony.render_cache import ENTRY_OVERHEAD, RenderCache

DATE = "2026-01-01"

TEXT = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(["", " ", "\n", "<|start|>assistant<|channel|>final<|message|>x<|end|>",
                     "<|call|>", "{\"city\": \"Paris\"}", "naïve café ☕ 你好", "a" * 300]))
NAMES = st.sampled_from(["get_weather", "read_file", "run", "x"])
SCHEMAS = st.sampled_from([
    None,
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1.0}}},
    {"properties": {"b": {"type": "boolean"}, "a": {"type": "string", "enum": ["x", "y"]}},
     "type": "object"},
])
TOOLS = st.lists(st.builds(p.Tool, NAMES, st.sampled_from(["", "Gets it.", "Runs a command."]),
                           SCHEMAS), max_size=3, unique_by=lambda t: t.name)
MESSAGES = st.one_of(
    st.builds(p.user, TEXT), st.builds(p.reasoning, TEXT), st.builds(p.answer, TEXT),
    st.builds(p.preamble, TEXT), st.builds(p.call, NAMES, TEXT),
    st.builds(p.tool_result, NAMES, TEXT))
CONVERSATIONS = st.builds(
    p.Conversation, st.sampled_from(["low", "medium", "high"]),
    st.lists(TEXT, max_size=2), TOOLS, st.lists(MESSAGES, max_size=8))
# what the next request does to the previous conversation
STEPS = st.one_of(
    st.tuples(st.just("extend"), st.lists(MESSAGES, min_size=1, max_size=3)),
    st.tuples(st.just("answer"), TEXT),  # a final answer: earlier reasoning stops rendering
    st.tuples(st.just("truncate"), st.integers(0, 6)),  # a client that edits its history
    st.tuples(st.just("tools"), TOOLS),
    st.tuples(st.just("effort"), st.sampled_from(["low", "medium", "high"])),
    st.tuples(st.just("instructions"), st.lists(TEXT, max_size=2)),
    st.tuples(st.just("new"), CONVERSATIONS),
)


def _apply(conversation: p.Conversation, step: tuple) -> p.Conversation:
    kind, arg = step
    c = conversation
    if kind == "extend":
        return p.Conversation(c.effort, c.instructions, c.tools, [*c.messages, *arg])
    if kind == "answer":
        return p.Conversation(c.effort, c.instructions, c.tools,
                              [*c.messages, p.answer(arg), p.user("next")])
    if kind == "truncate":
        return p.Conversation(c.effort, c.instructions, c.tools, c.messages[:arg])
    if kind == "tools":
        return p.Conversation(c.effort, c.instructions, arg, c.messages)
    if kind == "effort":
        return p.Conversation(arg, c.instructions, c.tools, c.messages)
    if kind == "instructions":
        return p.Conversation(c.effort, arg, c.tools, c.messages)
    return arg


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=CONVERSATIONS, steps=st.lists(STEPS, max_size=6),
       max_bytes=st.sampled_from([0, 600, 3000, 40_000, 10**9]),
       owners=st.lists(st.sampled_from(["", "key-a", "key-b", None]), min_size=7, max_size=7))
def test_cached_render_equals_full_render(harmony, first, steps, max_bytes, owners):
    cache = RenderCache(harmony, max_bytes)
    conversation = first
    for i, step in enumerate([None, *steps]):
        if step is not None:
            conversation = _apply(conversation, step)
        full = render_conversation(harmony, conversation, DATE)
        assert cache.render(conversation, DATE, owners[i]) == full
        assert cache.render(conversation, DATE, owners[i]) == full  # now from the cache
        assert cache.bytes <= max_bytes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversation=CONVERSATIONS, max_bytes=st.sampled_from([0, 3000, 10**9]))
def test_async_render_equals_full_render(harmony, conversation, max_bytes):
    cache = RenderCache(harmony, max_bytes)
    full = render_conversation(harmony, conversation, DATE)
    for _ in range(2):  # cold, then warm
        assert asyncio.run(cache.render_async(conversation, DATE, slice_s=0)) == full


def _conversation(i: int, messages: int = 4, size: int = 40) -> p.Conversation:
    history = []
    for j in range(messages):
        history += [p.user(f"question {i}.{j} " + "x" * size), p.reasoning(f"think {i}.{j}"),
                    p.answer(f"answer {i}.{j}")]
    return p.Conversation("medium", ["Be brief."], [], history)


def test_next_turn_renders_only_its_new_messages(harmony):
    cache = RenderCache(harmony, 10**9)
    tools = [p.Tool("get_weather", "Gets it.", {"type": "object", "properties": {}})]
    base = [p.user("Weather in Paris?"), p.reasoning("Need the tool."),
            p.call("get_weather", '{"city":"Paris"}'), p.tool_result("get_weather", "18C")]
    cache.render(p.Conversation("low", [], tools, base), DATE)
    misses = cache.misses
    turn = p.Conversation("low", [], tools, [*base, p.reasoning("Got it."),
                                             p.call("get_weather", '{"city":"Nice"}')])
    assert cache.render(turn, DATE) == render_conversation(harmony, turn, DATE)
    assert cache.misses - misses == 2  # the head and the four earlier messages were hits
    # a final answer drops both reasonings: they are not looked up, the rest still hits
    done = p.Conversation("low", [], tools, [*turn.messages, p.answer("18C and sunny.")])
    misses, hits = cache.misses, cache.hits
    assert cache.render(done, DATE) == render_conversation(harmony, done, DATE)
    assert (cache.misses - misses, cache.hits - hits) == (1, 1 + 4)


def test_cache_is_bounded_by_bytes_and_evicts_least_recently_used(harmony):
    bound = 6000
    cache = RenderCache(harmony, bound)
    for i in range(200):
        cache.render(_conversation(i), DATE)
        assert cache.bytes <= bound
        assert cache.bytes == sum(size for _, size in cache._entries.values())
    assert 0 < len(cache) < 200
    # the head every conversation shares stays (it is used by every render); the first
    # conversation's messages are long gone
    assert cache.render(_conversation(0), DATE) == render_conversation(harmony, _conversation(0),
                                                                      DATE)
    assert ("", p.user("question 0.0 " + "x" * 40)) in cache._entries  # re-rendered, cached again
    # a piece bigger than the whole bound is rendered, never kept
    huge = p.Conversation("medium", [], [], [p.user("y " * 5000)])
    entries = len(cache)
    assert cache.render(huge, DATE) == render_conversation(harmony, huge, DATE)
    assert ("", huge.messages[0]) not in cache._entries and len(cache) <= entries + 1
    assert cache.bytes <= bound


def test_entry_size_counts_tokens_and_text(harmony):
    cache = RenderCache(harmony, 10**9)
    message = p.user("hello " * 100)
    cache.render(p.Conversation("low", [], [], [message]), DATE)
    tokens, size = cache._entries[("", message)]
    assert size >= 4 * len(tokens) + len(message.text) + ENTRY_OVERHEAD


def test_owners_share_nothing_and_none_caches_nothing(harmony):
    cache = RenderCache(harmony, 10**9)
    conversation = _conversation(1)
    cache.render(conversation, DATE, "owner-a")
    entries, hits = len(cache), cache.hits
    cache.render(conversation, DATE, "owner-b")
    assert cache.hits == hits and len(cache) == 2 * entries  # no hit across owners
    cache.render(conversation, DATE, None)
    assert cache.hits == hits and len(cache) == 2 * entries  # None: not cached, not looked up
    cache.render(conversation, DATE, "owner-a")
    assert cache.hits == hits + entries


def test_day_change_and_pinned_date_key_the_head(harmony):
    cache = RenderCache(harmony, 10**9)
    conversation = _conversation(2)
    for date in ("2026-01-01", "2026-01-02", None):
        assert cache.render(conversation, date) == render_conversation(harmony, conversation, date)


@pytest.mark.parametrize("effort", ["low", "high"])
def test_int_and_float_schemas_are_different_heads(harmony, effort):
    cache = RenderCache(harmony, 10**9)
    for minimum in (1, 1.0, True, 1):
        tools = [p.Tool("f", "", {"type": "object",
                                  "properties": {"n": {"type": "integer", "minimum": minimum}}})]
        conversation = p.Conversation(effort, [], tools, [p.user("hi")])
        assert cache.render(conversation, DATE) == render_conversation(harmony, conversation, DATE)


async def test_render_async_hands_the_loop_back_between_messages(harmony):
    cache = RenderCache(harmony, 10**9)
    conversation = _conversation(3, messages=6)
    ran = 0
    done = False

    async def other_stream() -> None:
        nonlocal ran
        while not done:
            ran += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_stream())
    await asyncio.sleep(0)
    ran = 0
    tokens = await cache.render_async(conversation, DATE, slice_s=0)
    done = True
    await task
    assert tokens == render_conversation(harmony, conversation, DATE)
    assert ran >= 1 + len(conversation.messages) - 6  # once per piece rendered (6 reasonings dropped)


async def test_prerender_fills_the_cache_that_prepare_then_reads(harmony):
    from server.errors import ModelNotFoundError
    from server.pipeline import PRERENDER_MIN_CHARS
    from tests.unit.helpers import scripted_pipeline

    pipeline = scripted_pipeline(harmony, "<|channel|>final<|message|>ok<|return|>", 1)
    long = _conversation(4, messages=8, size=PRERENDER_MIN_CHARS // 8)
    plan = p.Plan(model="m", conversation=long)
    await pipeline.prerender(plan)
    cache = pipeline.renders
    misses = cache.misses
    assert len(cache) > 0
    prompt, _ = pipeline.checked_prompt(plan)
    assert prompt == render_conversation(harmony, long, "2026-01-01")
    assert cache.misses == misses  # all hits
    short = p.Plan(model="m", conversation=_conversation(5, messages=1))
    entries = len(cache)
    await pipeline.prerender(short)  # short conversations render in prepare, at once
    assert len(cache) == entries
    with pytest.raises(ModelNotFoundError):  # the error prepare would raise, nothing rendered
        await pipeline.prerender(p.Plan(model="other", conversation=_conversation(6, 8, 4000)))
    assert len(cache) == entries
