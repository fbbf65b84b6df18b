"""The agent-turn workload generator (loadtest/agent.py): its size, determinism, and what a next
turn and another conversation share with a request (what the render cache can reuse)."""

from __future__ import annotations

from loadtest.agent import agent_request, next_turn
from server.config import Settings
from server.harmony.render import render_conversation
from server.harmony.render_cache import RenderCache
from server.schemas.chat_request import CompletionCreateParams
from server.surfaces.chat import conversation

SETTINGS = Settings(engine="scripted", script="unused")


def _conversation(body: dict):
    return conversation(CompletionCreateParams.model_validate(body), SETTINGS)


def test_default_size_is_an_agent_sized_request(harmony):
    body = agent_request()
    assert len(body["tools"]) == 30
    assert len(body["messages"]) == 2 + 2 * 40  # system, task, 40 x (call, result)
    tokens = render_conversation(harmony, _conversation(body), "2026-01-01")
    assert 20_000 < len(tokens) < 26_000
    small = agent_request(tools=3, turns=4)
    assert len(small["tools"]) == 3 and len(small["messages"]) == 10


def test_deterministic_and_seeds_share_only_the_agent():
    assert agent_request(seed=1) == agent_request(seed=1)
    a, b = agent_request(seed=1), agent_request(seed=2)
    assert a["tools"] == b["tools"] and a["messages"][0] == b["messages"][0]  # the agent
    assert not any(x == y for x, y in zip(a["messages"][1:], b["messages"][1:], strict=True))


def test_next_turn_extends_the_conversation_by_one_step(harmony):
    body = agent_request(tools=5, turns=6)
    turn = next_turn(body)
    assert turn["messages"][:-2] == body["messages"]
    assert [m["role"] for m in turn["messages"][-2:]] == ["assistant", "tool"]
    assert turn["messages"][-1]["tool_call_id"] == turn["messages"][-2]["tool_calls"][0]["id"]
    cache = RenderCache(harmony, 10**9)
    cache.render(_conversation(body), "2026-01-01")
    misses = cache.misses
    nxt = _conversation(turn)
    assert cache.render(nxt, "2026-01-01") == render_conversation(harmony, nxt, "2026-01-01")
    assert cache.misses - misses == 3  # the new reasoning, call and result
