"""The agent-turn workload: a coding agent's next Chat Completions request, sized by tools and history.

An agent re-sends its whole conversation every turn: a long system prompt, its function tools and
every earlier step of the tool loop (the model's reasoning, its call, the tool's result), then
adds one step. ``agent_request(tools=30, turns=40)`` is one such request (~23k prompt tokens,
~150 KB of JSON); ``next_turn(body)`` is the request of the turn after it (the same conversation
plus one call and its result), which a server can render incrementally.

Everything is deterministic: the system prompt and the tools are those of one agent (the same in
every conversation, as for every user of one agent framework); ``seed`` draws the task and the
history, so distinct seeds are distinct conversations of the same size, which share only the
system prompt and the tools.
"""

from __future__ import annotations

import json
import random

_VERBS = ("read", "write", "list", "search", "run", "test", "lint", "format", "diff", "apply",
          "open", "close", "fetch", "build", "deploy", "inspect", "rename", "move", "count", "plan")
_NOUNS = ("file", "directory", "symbol", "test", "patch", "branch", "commit", "issue", "package",
          "module", "function", "class", "config", "log", "process", "query", "schema", "table")
_WORDS = ("the", "server", "renders", "each", "request", "into", "tokens", "before", "engine",
          "streams", "answer", "parser", "splits", "reasoning", "from", "final", "content",
          "cache", "prefix", "agent", "tool", "result", "call", "arguments", "returns", "value",
          "when", "error", "raised", "path", "line", "column", "match", "pattern", "loop")
_IDENTS = ("request", "tokens", "cache", "render", "plan", "engine", "stream", "event", "choice",
           "delta", "message", "parser", "result", "state", "config", "value", "index", "item")

SYSTEM_PROMPT = (
    "You are a coding agent working in a repository on the user's machine. Read files before you "
    "change them, keep edits small, run the tests that cover what you touched, and report what "
    "you did and what is left. Prefer the tools over guessing; never invent file contents. "
) * 6


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _tool(rng: random.Random, index: int) -> dict:
    name = f"{_VERBS[index % len(_VERBS)]}_{_NOUNS[(index * 7) % len(_NOUNS)]}"
    if index >= len(_VERBS):
        name += f"_{index}"
    properties = {}
    for p in range(3 + index % 4):
        prop = f"{_IDENTS[(index + p * 5) % len(_IDENTS)]}_{p}"
        if p % 3 == 0:
            properties[prop] = {"type": "string", "description": _sentence(rng, 8)}
        elif p % 3 == 1:
            properties[prop] = {"type": "integer", "description": _sentence(rng, 6),
                                "minimum": 0}
        else:
            properties[prop] = {"type": "string", "enum": ["auto", "always", "never"],
                                "description": _sentence(rng, 5)}
    return {"type": "function", "function": {
        "name": name, "description": _sentence(rng, 20) + " " + _sentence(rng, 12),
        "parameters": {"type": "object", "properties": properties,
                       "required": list(properties)[:2]}}}


def _code(rng: random.Random, lines: int) -> str:
    out = []
    for i in range(lines):
        a, b, c = (rng.choice(_IDENTS) for _ in range(3))
        indent = "    " * (i % 3)
        kind = i % 5
        if kind == 0:
            out.append(f"{indent}def {a}_{b}({c}: list[int], limit: int = {rng.randint(1, 999)}) -> dict:")
        elif kind == 1:
            out.append(f"{indent}    {a} = {b}.get('{c}', {rng.randint(0, 99)})  # {_sentence(rng, 5)}")
        elif kind == 2:
            out.append(f"{indent}    if {a} > {b}_{c}:")
        elif kind == 3:
            out.append(f"{indent}        return {{'{a}': {b}, '{c}': {rng.random():.4f}}}")
        else:
            out.append(f'{indent}    """{_sentence(rng, 9)}"""')
    return "\n".join(out)


def _step(rng: random.Random, tools: list[dict], step: int) -> list[dict]:
    """One tool-loop step: the assistant's reasoning and call, then the tool's result."""
    fn = tools[step % len(tools)]["function"]
    args = {}
    for prop, schema in fn["parameters"]["properties"].items():
        if schema["type"] == "integer":
            args[prop] = rng.randint(0, 500)
        elif "enum" in schema:
            args[prop] = rng.choice(schema["enum"])
        else:
            args[prop] = f"src/{rng.choice(_IDENTS)}/{rng.choice(_IDENTS)}.py"
    call_id = f"call_{step:04d}"
    assistant = {"role": "assistant", "content": None,
                 "reasoning_content": " ".join(_sentence(rng, 12) for _ in range(3)),
                 "tool_calls": [{"id": call_id, "type": "function",
                                 "function": {"name": fn["name"], "arguments": json.dumps(args)}}]}
    result = {"role": "tool", "tool_call_id": call_id,
              "content": _code(rng, 20 + rng.randint(0, 10))}
    return [assistant, result]


def agent_request(model: str = "gpt-oss", *, tools: int = 30, turns: int = 40, seed: int = 0,
                  max_tokens: int = 64, stream: bool = True) -> dict:
    """A Chat Completions body: system prompt, ``tools`` function tools, a user task and
    ``turns`` tool-loop steps (reasoning + call + result each), ending after a tool result."""
    tool_rng = random.Random(-1)
    tool_list = [_tool(tool_rng, i) for i in range(tools)]
    rng = random.Random(seed)
    task = f"Fix the failing test in tests/test_cache_{seed}.py: " \
        + " ".join(_sentence(rng, 14) for _ in range(4))
    messages: list[dict] = [{"role": "system", "content": SYSTEM_PROMPT},
                            {"role": "user", "content": task}]
    for step in range(turns):
        messages += _step(rng, tool_list, step)
    body = {"model": model, "messages": messages, "tools": tool_list, "max_tokens": max_tokens,
            "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def next_turn(body: dict, seed: int = 1) -> dict:
    """The request of the agent's next turn: ``body`` plus one more call and its result."""
    rng = random.Random(seed * 7919 + len(body["messages"]))
    step = (len(body["messages"]) - 2) // 2
    return {**body, "messages": [*body["messages"], *_step(rng, body["tools"], step)]}
