"""The benchmark: --quick mode (scripted parts only) produces the tables and the chart; part (a) reports medians."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib (test extra)")
def test_quick_benchmark_writes_table_and_chart(tmp_path):
    result = subprocess.run([sys.executable, "-m", "loadtest.benchmark", "--out", str(tmp_path), "--quick"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    md = (tmp_path / "benchmark.md").read_text()
    assert "| output tokens | stream interval | concurrency |" in md
    assert "us CPU / token" in md and "## Targets" in md and "Machine:" in md
    table = [line for line in md.splitlines() if line.startswith("| 512 |")]
    assert len(table) == 4  # intervals 1 and 8 x concurrency 1 and 16
    for line in table:
        cells = [c.strip(" *") for c in line.strip("|").split("|")]
        assert cells[4] == "0"  # failures
        assert float(cells[7]) > 0  # us CPU per token
    names = ("chat", "responses", "messages", "completions")
    surfaces = {cells[0]: cells for line in md.splitlines()
                if line.startswith(tuple(f"| {name} |" for name in names))
                for cells in [[c.strip(" *`") for c in line.strip("|").split("|")]]}
    assert set(surfaces) == set(names)
    for cells in surfaces.values():
        assert cells[3] == "0" and float(cells[4]) > 0  # no failures; us CPU per token
    assert surfaces["chat"][5] == "1.0x"
    assert all(f"- {name} stream:" in md for name in names[1:])
    # (g) the agent turn: render figures, the three phases over HTTP, their verdicts
    assert "## (g) The agent turn" in md and "prompt tokens" in md
    assert "| **next turn of a cached conversation (incremental)** |" in md
    for phase in ("short requests", "new conversations (full renders)",
                  "next turns (incremental renders)"):
        row = next(line for line in md.splitlines() if line.startswith(f"| {phase} |"))
        cells = [c.strip(" *") for c in row.strip("|").split("|")]
        assert int(cells[1]) > 0 and float(cells[3]) > 0  # stream gaps, p99
        assert int(cells[5]) > 0 and float(cells[6]) > 0  # requests, their TTFT
    assert "- Agent turn, incremental render" in md
    assert "Skipped: --skip-vllm" in md  # (b) needs vLLM; --quick skips it
    data = json.loads((tmp_path / "benchmark.json").read_text())
    assert data["agent"]["render"]["incremental_equals_full"] is True
    png = (tmp_path / "benchmark.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert (tmp_path / "benchmark.json").exists()


def test_the_floor_reports_its_median_round():
    from loadtest.floor import summary

    rounds = [(100, 0.02, 1.0, [5.0]), (100, 0.01, 1.0, [4.0]), (50, 0.05, 1.0, [9.0])]
    out = summary(rounds)
    assert out["us_per_token"] == 200.0 and out["ttft_ms_median"] == 5.0 and out["rounds"] == 3


def test_parts_a_and_b_report_the_median_batch():
    from loadtest.client import Batch, median_batch

    batches = [Batch(tokens=1000, cpu_s=s) for s in (0.030, 0.010, 0.014)]
    assert median_batch(batches).cpu_s == 0.014
    assert median_batch([Batch(tokens=0, cpu_s=0.0), Batch(tokens=10, cpu_s=1.0),
                         Batch(tokens=10, cpu_s=2.0)]).cpu_s == 2.0  # a batch with no tokens is the worst


def test_the_floor_counts_frames_for_message_text_only():
    """--frames writes a frame for each output carrying message text: never for header tokens."""
    from loadtest.floor import FIRST_SPECIAL, MESSAGE, _visible
    from server.harmony.encoding import load_harmony

    start, channel, end = 200006, 200005, 200007
    analysis, hello = 35644, 12194  # plain vocabulary ids
    assert _visible([start, channel, analysis], False) == (False, False)  # a header
    assert _visible([MESSAGE], False) == (False, True)  # the body opens, no text yet
    assert _visible([hello], True) == (True, True)
    assert _visible([hello, end], True) == (True, False)  # text, then the message ends
    assert _visible([end, start, analysis], True) == (False, False)
    encoding = load_harmony().encoding  # the ids above are Harmony's own
    assert encoding.encode("<|message|>", allowed_special="all") == [MESSAGE]
    assert encoding.encode("<|start|><|channel|><|end|>", allowed_special="all") == [start, channel, end]
    assert load_harmony().special.first == FIRST_SPECIAL


def test_the_load_client_counts_streamed_and_whole_answers_alike(tmp_path):
    """Part (b)'s `stream: false` column: the client reads a whole JSON answer on a kept-alive
    connection and counts the same tokens as for the streamed answer to the same request."""
    from loadtest.benchmark import scripted_server, write_script
    from loadtest.client import run_batch

    script = tmp_path / "script.jsonl"
    write_script(script, 64)
    proc = scripted_server(script, 1, tmp_path / "server.log")
    try:
        body = {"model": proc.model(), "max_tokens": 40, "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "Hi"}]}
        streamed = run_batch(body, 6, 2, proc)
        whole = run_batch({"model": body["model"], "max_tokens": 40, "stream": False,
                           "messages": body["messages"]}, 6, 2, proc)
        refused = run_batch({"model": "no-such-model", "max_tokens": 40, "stream": False,
                             "messages": body["messages"]}, 2, 1, proc)
    finally:
        proc.stop()
    assert (streamed.failures, whole.failures) == (0, 0), streamed.errors + whole.errors
    assert streamed.requests == whole.requests == 6
    assert streamed.tokens == whole.tokens == 6 * 40
    assert whole.ttft_ms == [] and whole.cpu_s > 0
    assert refused.failures == 2 and "404" in refused.errors[0]


def test_part_b_reports_what_frames_cost_from_the_stream_false_column():
    from loadtest.peers import markdown, verdicts

    row = {"tokens": 2112, "failures": 0, "api_cpu_s": 0.2, "wall_s": 1.6, "rounds": 5}
    b = {"concurrency": 8, "max_tokens": 256,
         "trained": {"requests": 64, "ours": {**row, "us_per_token": 90.0, "ttft_ms_median": 30.0},
                     "ours_json": {**row, "us_per_token": 80.5, "ttft_ms_median": None},
                     "floor": {**row, "us_per_token": 46.0}}}
    lines = verdicts(b)
    assert "- trained: ours with `stream: false` (the same requests, one write each) 1.75x the " \
           "floor: the frames cost ours +9.5 us a token (information, no target)" in lines
    table = [line for line in markdown(b) if line.startswith("| trained |")]
    assert [line.split(" | ")[1] for line in table] == [
        "gpt-oss-server (--engine vllm)", "gpt-oss-server, the same requests with stream: false",
        "bare AsyncLLM consumer (floor)"]
    assert "None" not in table[1]


def test_part_b_puts_the_stream_false_batches_in_their_own_column(monkeypatch, tmp_path):
    """ours_json is measured on ours' server (trained only) and reported as its own row."""
    from argparse import Namespace

    from loadtest import peers

    measured = []

    def server(name, load, work, tag, concurrency):
        measured.append((tag, name))
        row = {"us_per_token": 90.0}
        return {**row, "json": {"us_per_token": 80.0}} if name == "ours" and load["frames"] else row

    monkeypatch.setattr(peers, "unavailable", lambda: None)
    monkeypatch.setattr(peers, "_make_models", lambda work: {"trained": work, "random": work})
    monkeypatch.setattr(peers, "_measure_server", server)
    monkeypatch.setattr(peers, "_measure_floor", lambda *a, **k: {"us_per_token": 45.0})
    b = peers.part_b(Namespace(skip_vllm=False, quick=False, b_requests=64), tmp_path)
    assert measured == [("trained", "ours"), ("trained", "vllm"), ("trained", "floor_http"),
                        ("random", "ours"), ("random", "vllm"), ("random", "floor_http")]
    assert b["trained"]["ours"] == {"us_per_token": 90.0}
    assert b["trained"]["ours_json"] == {"us_per_token": 80.0}
    assert "ours_json" not in b["random"] and "floor_frames" not in b["random"]


def test_part_b_reads_ours_against_the_floor_over_http():
    from loadtest.peers import markdown, verdicts

    row = {"tokens": 2112, "failures": 0, "api_cpu_s": 0.2, "wall_s": 1.6, "rounds": 5}
    b = {"concurrency": 8, "max_tokens": 256,
         "random": {"requests": 32, "ours": {**row, "us_per_token": 90.0},
                    "floor": {**row, "us_per_token": 60.0},
                    "floor_http": {**row, "us_per_token": 75.0}}}
    assert "- random: the floor over HTTP (uvicorn, no work of its own) 1.25x the floor, ours " \
           "1.20x the floor over HTTP (information, no target: what HTTP and the frames cost any " \
           "Python server on uvicorn)" in verdicts(b)
    table = [line for line in markdown(b) if line.startswith("| random |")]
    assert table[-1].split(" | ")[1] == "the floor over HTTP: uvicorn + a bare ASGI app"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM (the cpu extra)")
def test_the_floor_over_http_streams_what_the_load_client_reads():
    """floor_http's app, driven as uvicorn drives it, over a stand-in for AsyncLLM: a frame per
    output with message text, the usage and [DONE] as the client's Chat reader expects; with
    stream false one JSON answer with its length; the sampling options taken from the body."""
    import asyncio
    from types import SimpleNamespace

    from loadtest.floor import MESSAGE
    from loadtest.floor_http import make_app
    from loadtest.surfaces import CHAT

    start, end, hello = 200006, 200007, 12194
    steps = [[start, 35644], [MESSAGE], [hello], [hello, hello], [end]]
    asked = []

    class LLM:
        async def generate(self, prompt, params, request_id):
            asked.append((prompt["prompt_token_ids"], params.max_tokens, params.logit_bias,
                          request_id))
            for ids in steps:
                yield SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids)])

    app = make_app(LLM(), [1, 2, 3], [200012])

    async def call(body: dict) -> list[dict]:
        sent, incoming = [], [{"type": "http.request", "body": json.dumps(body).encode()}]
        scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}

        async def receive():
            return incoming.pop()

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        return sent

    streamed = asyncio.run(call({"stream": True, "max_tokens": 9, "logit_bias": {"5": -100}}))
    assert streamed[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in streamed[1:])
    lines = [line for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert [CHAT.first_token(line) for line in lines[:-2]] == [True, True]  # outputs 3 and 4
    assert CHAT.done(body) and CHAT.tokens(body) == 7
    whole = asyncio.run(call({"stream": False}))
    headers = dict(whole[0]["headers"])
    assert int(headers[b"content-length"]) == len(whole[1]["body"])
    assert CHAT.tokens(whole[1]["body"]) == 7
    assert [a[:3] for a in asked] == [([1, 2, 3], 9, {5: -100}), ([1, 2, 3], 256, None)]
    assert asked[0][3] != asked[1][3]  # a request id each

    async def lifespan() -> list[str]:
        incoming, sent = [{"type": "lifespan.shutdown"}, {"type": "lifespan.startup"}], []

        async def receive():
            return incoming.pop()

        async def send(message):
            sent.append(message["type"])

        await app({"type": "lifespan"}, receive, send)
        return sent

    assert asyncio.run(lifespan()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_the_server_cpu_is_read_from_its_process_clock():
    """Proc.cpu reads the server's CPU time in nanoseconds, every thread, where /proc's ticks of
    10 ms were 5-10% of a batch: it agrees with psutil's count to the tick."""
    import time

    import psutil

    from loadtest.client import process_cpu_clock

    spin = "import threading, time\n" \
           "def spin():\n    t = time.thread_time()\n    while time.thread_time() - t < 0.2: pass\n" \
           "threads = [threading.Thread(target=spin) for _ in range(2)]\n" \
           "[t.start() for t in threads]; [t.join() for t in threads]; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", spin])
    try:
        clock = process_cpu_clock(child.pid)
        assert clock is not None
        ps = psutil.Process(child.pid)
        deadline = time.monotonic() + 20
        while sum(ps.cpu_times()[:2]) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)  # until both threads spun (or are spinning)
        time.sleep(0.3)  # both done: the process sleeps
        ticks = sum(ps.cpu_times()[:2])
        precise = time.clock_gettime(clock)
        assert abs(precise - ticks) <= 0.02 and precise >= 0.2 + 0.2
    finally:
        child.kill()
        child.wait()


def test_the_floors_take_vllm_engine_flags_after_a_double_dash():
    from loadtest.floor import split_argv

    parser, argv, engine = split_argv(["--model", "m", "--rounds", "2", "--", "--dtype", "bf16"],
                                      "The floor.\n\nMore.")
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args(argv)
    assert (args.model, args.rounds, engine) == ("m", 2, ["--dtype", "bf16"])
    assert parser.description == "The floor."
    assert split_argv(["--model", "m"], "")[2] == []
