"""(g) The agent turn (loadtest/agent.py: 30 tools, a 40-step tool loop, ~23k prompt tokens).

- Render, in this process (CPU time of the rendering thread, medians): the full render
  (server.harmony.render.render_conversation) of new conversations; the same through the render
  cache when the agent (its system prompt and tools) was seen before but the conversation is new;
  and the incremental render of the next turn of a conversation already rendered (the cache
  holds its earlier messages). Target: incremental <= a tenth of the full render.
- Event-loop stall, in this process: the longest gap of a 1 ms ticker task (in CPU time of the
  loop's thread) while one new conversation of an agent seen before (its head cached) renders,
  synchronously (what blocks the server's event loop) and with ``RenderCache.render_async``
  (which hands the loop back between messages; the head of an agent never seen, one Harmony
  call for all its tools, cannot be split: ~2-4 ms here for 30 tools).
- Over HTTP, our server on the scripted engine (stream interval 1, 10 ms per token): 8 streams
  run for the whole part; requests arrive one after another (200 ms apart) beside them: short
  ones (the quiet phase), then agent requests of new conversations (full renders), then next
  turns of one conversation (incremental renders). The streams' inter-token gaps are compared
  between the phases, and each phase's median time to first token (the scripted engine's own
  10 ms per step is in all of them: the quiet phase's TTFT is the baseline). Target: full
  renders add <= 5 ms to the streams' p99.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

from loadtest.agent import agent_request, next_turn

RENDER_RATIO_TARGET = 0.1
ITL_EXTRA_TARGET_MS = 5.0
DATE = "2026-01-01"
STREAMS, TOKEN_DELAY = 8, 0.01


def _conversations():
    from server.config import Settings
    from server.schemas.chat_request import CompletionCreateParams
    from server.surfaces.chat import conversation

    settings = Settings(engine="scripted", script="unused")
    return lambda body: conversation(CompletionCreateParams.model_validate(body), settings)


def _ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1000, 2)


async def _longest_gap(work) -> float:
    """The longest gap (ms) of a 1 ms ticker while ``work()`` is awaited, in CPU time of this
    (the event loop's) thread: the work the loop did between two ticks, whatever the shared
    cores' scheduler added."""
    gaps = [0.0]
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.thread_time()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.thread_time()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await work()
    done.set()
    await task
    return round(max(gaps) * 1000, 2)


def render_figures(samples: int = 5) -> dict:
    from server.harmony.encoding import load_harmony
    from server.harmony.render import render_conversation
    from server.harmony.render_cache import RenderCache

    harmony, conv = load_harmony(), _conversations()
    bodies = [agent_request(seed=100 + i) for i in range(samples)]
    convs = [conv(b) for b in bodies]
    prompt = render_conversation(harmony, convs[0], DATE)

    def timed(fn, *args) -> float:
        """CPU time of this thread: a render on shared cores is not charged for preemptions."""
        t = time.thread_time()
        fn(*args)
        return time.thread_time() - t

    full = [timed(render_conversation, harmony, c, DATE) for c in convs]
    cache = RenderCache(harmony, 64 * 2**20)
    cache.render(conv(agent_request(seed=99)), DATE)  # the agent's head, as after its first user
    new = [timed(cache.render, c, DATE, "") for c in convs]
    body, incremental = bodies[-1], []
    for i in range(4 * samples):
        body = next_turn(body, seed=i)
        c = conv(body)
        incremental.append(timed(cache.render, c, DATE, ""))
    equal = cache.render(c, DATE) == render_conversation(harmony, c, DATE)

    fresh = conv(agent_request(seed=300))

    async def stalls() -> tuple[float, float]:
        sync_cache, async_cache = RenderCache(harmony, 64 * 2**20), RenderCache(harmony, 64 * 2**20)
        for warm in (sync_cache, async_cache):  # the agent was seen before: its head is cached
            warm.render(conv(agent_request(seed=301)), DATE)

        async def blocking() -> None:
            sync_cache.render(fresh, DATE)

        async def cooperative() -> None:
            await async_cache.render_async(fresh, DATE)

        return await _longest_gap(blocking), await _longest_gap(cooperative)

    runs = [asyncio.run(stalls()) for _ in range(3)]  # the median of three: the cores are shared
    blocking = statistics.median(r[0] for r in runs)
    cooperative = statistics.median(r[1] for r in runs)
    out = {"prompt_tokens": len(prompt), "request_json_bytes": len(json.dumps(bodies[0])),
           "messages": len(bodies[0]["messages"]), "tools": len(bodies[0]["tools"]),
           "full_render_ms": _ms(full), "new_conversation_cached_agent_ms": _ms(new),
           "incremental_render_ms": _ms(incremental),
           "ratio": round(statistics.median(incremental) / statistics.median(full), 3),
           "incremental_equals_full": equal, "loop_stall_sync_ms": blocking,
           "loop_stall_render_async_ms": cooperative}
    print(f"(g) render: {out}", flush=True)
    return out


# -- over HTTP ---------------------------------------------------------------------------------

def _request(port: int, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n").encode() + payload


async def _stream(port: int, body: dict, arrivals: list[float], stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request(port, body))
    try:
        while not stop.is_set():
            data = await reader.read(65536)
            if not data:
                break
            if b"data: {" in data:
                arrivals.append(time.perf_counter())
    finally:
        writer.close()


async def _agent(port: int, request: bytes) -> float:
    """One agent request; seconds to its first token frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.perf_counter()
    writer.write(request)
    first, seen = None, b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if first is None:
                seen += data
                if b'"content":"' in seen or b'"reasoning' in seen:
                    first = time.perf_counter()
    finally:
        writer.close()
    if first is None:
        raise RuntimeError(f"agent request without a token: {seen[:300]!r}")
    return first - start


def _gap_stats(arrivals: list[list[float]], start: float, end: float) -> dict:
    gaps = []
    for times in arrivals:
        gaps += [b - a for a, b in zip(times, times[1:], strict=False) if start <= b < end]
    gaps.sort()
    if not gaps:
        return {"gaps": 0}
    p99 = gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))]
    return {"gaps": len(gaps), "p50_ms": round(statistics.median(gaps) * 1000, 2),
            "p99_ms": round(p99 * 1000, 2), "max_ms": round(gaps[-1] * 1000, 2)}


async def _phases(port: int, model: str, phase_s: float) -> dict:
    stop = asyncio.Event()
    arrivals: list[list[float]] = [[] for _ in range(STREAMS)]
    stream_body = {"model": model, "max_tokens": 100_000, "stream": True,
                   "messages": [{"role": "user", "content": "Write a long essay."}]}
    tasks = [asyncio.create_task(_stream(port, stream_body, arrivals[i], stop))
             for i in range(STREAMS)]
    # every request is built before the phases, so that the client does no such work in them
    count = int(phase_s / 0.2) + 2
    chain = agent_request(model, seed=500, max_tokens=8)
    short = {"model": model, "max_tokens": 8, "stream": True,
             "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    requests = {"quiet": [_request(port, short)] * count,
                "full": [_request(port, agent_request(model, seed=1000 + i, max_tokens=8))
                         for i in range(count)], "incremental": []}
    await _agent(port, _request(port, chain))  # the conversation the next turns extend is cached
    for i in range(count):
        chain = next_turn(chain, seed=i)
        requests["incremental"].append(_request(port, chain))
    await asyncio.sleep(1.0)
    marks: dict[str, float] = {}
    ttft: dict[str, list[float]] = {"quiet": [], "full": [], "incremental": []}
    for phase in ttft:
        marks[phase] = time.perf_counter()
        for request in requests[phase]:
            if time.perf_counter() - marks[phase] >= phase_s:
                break
            ttft[phase].append(await _agent(port, request))
            await asyncio.sleep(0.2)
    marks["end"] = time.perf_counter()
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    names = ["quiet", "full", "incremental", "end"]
    out = {name: _gap_stats(arrivals, marks[name], marks[nxt]) for name, nxt in zip(names, names[1:],
                                                                                   strict=False)}
    for phase, values in ttft.items():
        out[phase]["requests"] = len(values)
        out[phase]["ttft_ms_median"] = _ms(values) if values else None
    return out


def part_agent(args, work: Path, start_server, write_script) -> dict:
    phase_s = 2.0 if args.quick else 6.0
    out: dict = {"render": render_figures(3 if args.quick else 5), "phase_s": phase_s}
    script = work / "script-agent.jsonl"
    write_script(script, 8192)
    proc = start_server(script, 1, work / "server-agent.log", delay=TOKEN_DELAY)
    try:
        out["http"] = asyncio.run(_phases(proc.port, proc.model(), phase_s))
    finally:
        proc.stop()
    print(f"(g) http: {out['http']}", flush=True)
    return out


def markdown(g: dict) -> list[str]:
    r = g["render"]
    out = ["## (g) The agent turn: render, time to first token, stalls", "",
           f"A coding agent's request (loadtest/agent.py): {r['tools']} function tools, "
           f"{r['messages']} messages (a 40-step tool loop), {r['request_json_bytes']:,} bytes of "
           f"JSON, {r['prompt_tokens']:,} prompt tokens.", "",
           "| render (in process, median CPU time of the rendering thread) | ms |", "|---|---:|",
           f"| full render (no cache) | {r['full_render_ms']} |",
           f"| new conversation of an agent seen before (head cached) | "
           f"{r['new_conversation_cached_agent_ms']} |",
           f"| **next turn of a cached conversation (incremental)** | **{r['incremental_render_ms']}** |",
           "", "| event loop (CPU time between two ticks of a 1 ms ticker, median of 3 runs) | ms |",
           "|---|---:|",
           f"| longest gap while a new conversation of a known agent renders synchronously | "
           f"{r['loop_stall_sync_ms']} |",
           f"| ... while it renders with `RenderCache.render_async` (what `Pipeline.prerender` "
           f"uses) | {r['loop_stall_render_async_ms']} |", ""]
    h = g.get("http")
    if h:
        out += [f"Over HTTP (scripted engine, {TOKEN_DELAY * 1000:g} ms per token, {STREAMS} streams "
                f"running; requests one after another beside them, 200 ms apart, for {g['phase_s']:g} s per phase):",
                "", "| requests beside the streams | stream gaps | p50 ms | **p99 ms** | max ms | requests | "
                "their median TTFT ms |", "|---|---:|---:|---:|---:|---:|---:|"]
        for phase, label in (("quiet", "short requests"), ("full", "new conversations (full renders)"),
                             ("incremental", "next turns (incremental renders)")):
            s = h.get(phase, {})
            out.append(f"| {label} | {s.get('gaps')} | {s.get('p50_ms')} | **{s.get('p99_ms')}** | "
                       f"{s.get('max_ms')} | {s.get('requests', '')} | "
                       f"{s.get('ttft_ms_median', '')} |")
    return out


def verdicts(g: dict) -> list[str]:
    r = g["render"]
    lines = [f"- Agent turn, incremental render {r['incremental_render_ms']} ms vs full "
             f"{r['full_render_ms']} ms: {r['ratio']}x, target <= {RENDER_RATIO_TARGET}x: "
             f"**{'met' if r['ratio'] <= RENDER_RATIO_TARGET and r['incremental_equals_full'] else 'missed'}**"]
    h = g.get("http")
    if h and h.get("quiet", {}).get("p99_ms") is not None:
        for phase, what in (("full", "a full agent-sized render"), ("incremental", "an incremental one")):
            extra = h[phase]["p99_ms"] - h["quiet"]["p99_ms"]
            lines.append(f"- Streams' p99 inter-token latency with {what} beside them: {extra:+.1f} ms, "
                         f"target <= {ITL_EXTRA_TARGET_MS:g} ms: "
                         f"**{'met' if extra <= ITL_EXTRA_TARGET_MS else 'missed'}**")
    return lines
