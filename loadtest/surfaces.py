"""What each API surface costs per streamed token, against Chat, on the scripted engine.

Every surface streams the same scripted completion through the same pipeline; only the adapter
and the stream fold differ. A ``Surface`` tells the benchmark client where to post, how its
body asks for N tokens, where the first token shows, how the stream ends and how many tokens
the usage reports, so one client measures them all.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

RATIO_TARGET = 1.2  # a surface may cost at most this much Chat's CPU per token


@dataclass(frozen=True)
class Surface:
    name: str
    path: str
    body: Callable[[str, int], dict]  # (model, max tokens) -> request body
    first_token: Callable[[bytes], bool]  # is this SSE data line a token?
    done: Callable[[bytes], bool]  # does the tail hold the stream's last frame?
    tokens: Callable[[bytes], int | None]  # output tokens from the tail's usage


def _last_int(pattern: bytes) -> Callable[[bytes], int | None]:
    regex = re.compile(pattern)

    def read(tail: bytes) -> int | None:
        found = regex.findall(tail)
        return int(found[-1]) if found else None

    return read


def _chat_token(line: bytes) -> bool:
    for choice in json.loads(line[5:]).get("choices") or ():
        d = choice.get("delta") or {}
        if d.get("content") or d.get("reasoning_content") or d.get("reasoning") or d.get("tool_calls"):
            return True
    return False


PROMPT = "Write a long essay."

CHAT = Surface(
    "chat", "/v1/chat/completions",
    lambda model, n: {"model": model, "max_tokens": n, "stream": True,
                      "stream_options": {"include_usage": True},
                      "messages": [{"role": "user", "content": PROMPT}]},
    _chat_token, lambda tail: b"data: [DONE]" in tail,
    _last_int(rb'"completion_tokens":(\d+)'))

RESPONSES = Surface(
    "responses", "/v1/responses",
    lambda model, n: {"model": model, "max_output_tokens": n, "stream": True, "input": PROMPT},
    lambda line: b'_text.delta"' in line,
    lambda tail: b"event: response.completed" in tail or b"event: response.incomplete" in tail,
    _last_int(rb'"output_tokens":(\d+)'))

MESSAGES = Surface(
    "messages", "/v1/messages",
    lambda model, n: {"model": model, "max_tokens": n, "stream": True,
                      "thinking": {"type": "enabled", "budget_tokens": 2048},
                      "messages": [{"role": "user", "content": PROMPT}]},
    lambda line: b'"content_block_delta"' in line,
    lambda tail: b"event: message_stop" in tail,
    _last_int(rb'"output_tokens":(\d+)'))

COMPLETIONS = Surface(
    "completions", "/v1/completions",
    lambda model, n: {"model": model, "max_tokens": n, "stream": True, "prompt": PROMPT,
                      "stream_options": {"include_usage": True}},
    lambda line: b'"text":"' in line and b'"text":""' not in line,
    lambda tail: b"data: [DONE]" in tail,
    _last_int(rb'"completion_tokens":(\d+)'))

SURFACES = [CHAT, RESPONSES, MESSAGES, COMPLETIONS]


def part_surfaces(args, work, start_server, run_batch, write_script) -> list[dict]:
    """Each surface, interleaved over a few rounds on one server (stream interval 1, 512 tokens);
    the median of the rounds per surface, and its ratio to Chat's."""
    length, concurrency = 512, 16
    rounds = 2 if args.quick else 5
    n = 32 if args.quick else 160
    script = work / "script-surfaces.jsonl"
    write_script(script, length)
    proc = start_server(script, 1, work / "server-surfaces.log")
    samples: dict[str, list[float]] = {s.name: [] for s in SURFACES}
    failures = {s.name: 0 for s in SURFACES}
    try:
        model = proc.model()
        for _ in range(rounds):
            for surface in SURFACES:
                batch = run_batch(surface.body(model, length), n, concurrency, proc, surface)
                failures[surface.name] += batch.failures
                if batch.tokens:
                    samples[surface.name].append(batch.cpu_s / batch.tokens * 1e6)
                if batch.errors:
                    print(f"(s) {surface.name}: {batch.errors[:2]}", file=sys.stderr)
    finally:
        proc.stop()
    chat = statistics.median(samples["chat"]) if samples["chat"] else float("nan")
    rows = []
    for surface in SURFACES:
        values = samples[surface.name]
        us = statistics.median(values) if values else float("nan")
        rows.append({"surface": surface.name, "path": surface.path, "rounds": len(values),
                     "requests_per_round": n, "failures": failures[surface.name],
                     "us_per_token": round(us, 2), "ratio_to_chat": round(us / chat, 2),
                     "samples": [round(v, 2) for v in values]})
        print(f"(s) {surface.name}: {us:.2f} us/token server CPU ({us / chat:.2f}x chat)",
              flush=True)
    return rows


def markdown(rows: list[dict]) -> list[str]:
    out = ["## (s) Every API surface vs Chat, scripted engine, zero delay", "",
           "The same scripted completion (512 output tokens: reasoning, then the answer), stream "
           "interval 1, 16 at a time; the surfaces take turns over several rounds on one server "
           "and each row is the median of its rounds.", "",
           "| surface | route | rounds x requests | failures | **us CPU / token** | vs Chat |",
           "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['surface']} | `{r['path']}` | {r['rounds']} x {r['requests_per_round']} | "
                   f"{r['failures']} | **{r['us_per_token']}** | {r['ratio_to_chat']}x |")
    return out


def verdicts(rows: list[dict]) -> list[str]:
    return [f"- {r['surface']} stream: {r['ratio_to_chat']}x Chat's server CPU per token, target "
            f"<= {RATIO_TARGET}x: **{'met' if r['ratio_to_chat'] <= RATIO_TARGET else 'missed'}**"
            for r in rows if r["surface"] != "chat"]
