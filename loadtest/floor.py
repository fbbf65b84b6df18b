"""The floor: a bare in-process vLLM ``AsyncLLM`` consumer of a benchmark workload, no HTTP at all.

    python -m loadtest.floor --model DIR --requests 64 --concurrency 8 --max-tokens 256 \\
        --prompt "What is the capital of France?" [--temperature 0] [--logit-bias JSON] \\
        [--frames] -- <vLLM engine flags>

It builds the engine exactly as ``python -m server --engine vllm`` does (the same engine
arguments, through server.engine.vllm.build_engine_args: no tokenizer, token ids in and out),
renders the prompt with our Harmony renderer, then streams the requests (``output_kind=DELTA``,
``detokenize=False``) and only counts the tokens, on the event loop both servers run on (uvloop;
asyncio's own loop measured the same here). Its own CPU time (user + system of this
process, every thread, the EngineCore child excluded) over the batch, per output token, is what
any API server on AsyncLLM must spend at least: the column the servers are compared with.

``--frames``: the floor of a server that streams, too. Each worker holds a loopback TCP
connection to a sink process (its CPU is not counted, like the load generator's) and writes one
Chat-sized SSE frame for every output that carries message text (a token after ``<|message|>``
and before the next special token: what a Harmony-aware server sends at stream interval 1) and
one at the end of each request, with the write uvicorn makes (``transport.write`` on uvloop).
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time

# the size of one of our Chat chunks carrying a short piece of text
FRAME = b"data: " + b"x" * 200 + b"\n\n"
FIRST_SPECIAL, MESSAGE = 199998, 200008  # Harmony's first special token id, <|message|>
SINK = """
import selectors, socket, sys
server = socket.create_server(("127.0.0.1", 0)); server.setblocking(False)
print(server.getsockname()[1], flush=True)
sel = selectors.DefaultSelector(); sel.register(server, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is server:
            conn, _ = server.accept(); conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
        elif not key.fileobj.recv(1 << 16):
            sel.unregister(key.fileobj); key.fileobj.close()
"""


def _sink() -> tuple[subprocess.Popen, int]:
    """A process that accepts connections and reads and drops everything sent to it."""
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    return sink, int(sink.stdout.readline())


def _visible(ids, in_body: bool) -> tuple[bool, bool]:
    """(whether these tokens carry message text, whether a message body is open after them)."""
    text = False
    for token in ids:
        if token >= FIRST_SPECIAL:
            in_body = token == MESSAGE
        elif in_body:
            text = True
    return text, in_body


def _engine(model: str, engine_flags: list[str]):
    from vllm.v1.engine.async_llm import AsyncLLM

    from server.config import parse_settings
    from server.engine.vllm import build_engine_args, cache_vllm_environment

    settings = parse_settings(["--engine", "vllm", "--model", model, "--served-model-name",
                               "gpt-oss-tiny", "--log-level", "warning", *engine_flags])
    llm = AsyncLLM.from_engine_args(build_engine_args(settings))
    cache_vllm_environment()  # as our server does: the floor is the least any server spends
    return llm


def _prompt(text: str, system: str | None) -> list[int]:
    from server import plan as p
    from server.harmony.encoding import load_harmony
    from server.harmony.render import render_conversation

    conversation = p.Conversation("medium", [system] if system else [], [], [p.user(text)])
    return render_conversation(load_harmony(), conversation, None)


async def _run(llm, prompt: list[int], params, requests: int, concurrency: int,
               tag: str, sink_port: int | None = None) -> tuple[int, list[float]]:
    """Stream ``requests`` generations, ``concurrency`` at a time; (tokens, TTFT ms each).
    ``params()`` makes each request's SamplingParams (every server builds one per request).
    TTFT: until the first output with message text, a token inside a ``<|message|>`` body
    (what a client first sees).
    With ``sink_port``, each worker writes the frames a streaming server would (``--frames``)."""
    queue = list(range(requests))
    tokens = 0
    ttft: list[float] = []

    async def worker() -> None:
        nonlocal tokens
        writer = None
        if sink_port is not None:
            _, writer = await asyncio.open_connection("127.0.0.1", sink_port)
        while queue:
            i = queue.pop()
            start = time.perf_counter()
            in_body = False
            first = None
            async for out in llm.generate({"prompt_token_ids": prompt}, params(), f"{tag}-{i}"):
                ids = out.outputs[0].token_ids
                tokens += len(ids)
                text, in_body = _visible(ids, in_body)
                if text:
                    if first is None:
                        first = time.perf_counter()
                    if writer is not None:
                        writer.write(FRAME)
            if writer is not None:
                writer.write(FRAME)  # the end of the stream
            if first is not None:
                ttft.append((first - start) * 1000)
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tokens, ttft


async def measure(args: argparse.Namespace, engine_flags: list[str],
                  sink_port: int | None = None) -> dict:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    from server.harmony.encoding import load_harmony

    llm = _engine(args.model, engine_flags)
    try:
        bias = {int(k): v for k, v in json.loads(args.logit_bias).items()} if args.logit_bias else None
        stops = list(load_harmony().stop_token_ids)

        def params(max_tokens: int):
            return lambda: SamplingParams(
                max_tokens=max_tokens, temperature=args.temperature, logit_bias=bias,
                stop_token_ids=stops, detokenize=False, skip_special_tokens=False,
                output_kind=RequestOutputKind.DELTA)

        prompt = _prompt(args.prompt, None)
        await _run(llm, prompt, params(4), min(args.concurrency, 8), args.concurrency, "warm",
                   sink_port)
        rounds = []  # (tokens, cpu s, wall s, TTFTs) of each round
        for i in range(args.rounds):
            cpu0, t0 = time.process_time(), time.perf_counter()
            tokens, ttft = await _run(llm, prompt, params(args.max_tokens), args.requests,
                                      args.concurrency, f"bench{i}", sink_port)
            rounds.append((tokens, time.process_time() - cpu0, time.perf_counter() - t0, ttft))
        out = summary(rounds)
        if args.long_system:
            long_prompt = _prompt(args.prompt, args.long_system)
            _, ttft_1k = await _run(llm, long_prompt, params(8), 12, 1, "ttft")
            out["ttft_1k_ms_median"] = round(statistics.median(ttft_1k), 2) if ttft_1k else None
        return out
    finally:
        llm.shutdown()
        del llm  # now, not at interpreter exit (where vLLM's __del__ fails noisily)
        gc.collect()


def summary(rounds: list[tuple[int, float, float, list[float]]]) -> dict:
    """The median round (by CPU per token): one round can be off by 2x on shared cores."""
    tokens, cpu, wall, ttft = sorted(rounds, key=lambda r: r[1] / max(r[0], 1))[len(rounds) // 2]
    return {"tokens": tokens, "api_cpu_s": round(cpu, 3), "wall_s": round(wall, 2),
            "us_per_token": round(cpu / tokens * 1e6, 1) if tokens else None,
            "ttft_ms_median": round(statistics.median(ttft), 2) if ttft else None,
            "rounds": len(rounds), "failures": 0, "errors": []}


def split_argv(argv: list[str] | None, doc: str
               ) -> tuple[argparse.ArgumentParser, list[str], list[str]]:
    """A parser with ``--model``, this program's flags and the vLLM engine flags after ``--``."""
    argv = sys.argv[1:] if argv is None else argv
    engine_flags: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, engine_flags = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    return parser, argv, engine_flags


def main(argv: list[str] | None = None) -> int:
    parser, argv, engine_flags = split_argv(argv, __doc__)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3,
                        help="Measure this many batches; report the median one.")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--logit-bias", default=None, help="JSON object: token id -> bias")
    parser.add_argument("--prompt", default="What is the capital of France?")
    parser.add_argument("--frames", action="store_true",
                        help="Also write each visible output as an SSE frame to a loopback socket.")
    parser.add_argument("--long-system", default=None,
                        help="Also measure TTFT with this system text (12 sequential requests).")
    args = parser.parse_args(argv)
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    from loadtest.client import run_on_uvloop  # the event loop both servers run on

    sink, port = _sink() if args.frames else (None, None)
    try:
        result = run_on_uvloop(measure(args, engine_flags, port))
    finally:
        if sink is not None:
            sink.kill()
    print("FLOOR " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
