"""(b) Our server, vLLM's own OpenAI server and the floor, on the same vLLM CPU engine.

Two workloads, the same requests on every side:

- ``trained``: the trained gpt-oss-tiny (real Harmony: reasoning, then a final answer), greedy
  "What is the capital of France?", 256 max tokens; ~33 tokens each, so per-request work weighs.
- ``random``: the random-weight tiny gpt-oss with Harmony's control tokens (ids 199998-200018)
  suppressed by ``logit_bias`` -100 on every side, so every request runs its full 256 tokens.
  Such output never opens a Harmony message: neither server sends a text frame before the end
  (both parse Harmony), so this column weighs the per-engine-step work (vLLM's output
  processing, our parser feeding and event loop) rather than frames.

Three columns each: ``ours`` (``python -m server --engine vllm``), ``vllm``
(``python -m vllm.entrypoints.openai.api_server``) and ``floor`` (loadtest/floor.py: a bare
in-process AsyncLLM consumer, no HTTP). The figure is CPU time of the API process only (the
EngineCore child excluded) per output token. On the trained workload two more: ``ours_json``,
ours answering the same requests with ``stream: false`` (its batches alternating with the
streamed ones on the same server): the same work with one write a request instead of a frame a
token; and ``floor_frames`` (``floor.py --frames``): the floor that also writes the SSE frames a streaming
server must, one socket write per output with message text, to a loopback reader; the least a
server that streams each token can spend, for information (the targets are against the floor).
The random workload sends no text before the end, so there it would equal the floor. On both:
``floor_http`` (loadtest/floor_http.py), the floor behind the least ASGI app that streams Chat's
shape, on uvicorn as ours runs it: what HTTP and the frames cost any Python server before it
does any work of its own, and so how much of the 1.3x the target leaves for that work.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from loadtest.client import ROOT, Proc, free_port, median_batch, run_batch

FLOOR_RATIO_TARGET = 1.3  # ours <= 1.3x the floor
VLLM_RATIO_TARGET = 0.5  # ours <= 0.5x vLLM's own server
TTFT_OVERHEAD_MS = 2.0
NO_CONTROL_TOKENS = {str(i): -100 for i in range(199998, 200019)}
# Each side measures this many batches on one running server and reports the median one: on
# shared cores one batch can be off by 2x (the floor measured 53 and 112 us per token in two runs).
ROUNDS = 5
QUESTION = "What is the capital of France?"
ENGINE = ["--dtype", "bfloat16", "--max-model-len", "4096", "--kv-cache-memory-bytes",
          str(256 * 2**20)]
ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
SERVERS = (("ours", "gpt-oss-server (--engine vllm)"),
           ("ours_json", "gpt-oss-server, the same requests with stream: false"),
           ("vllm", "vllm.entrypoints.openai.api_server"),
           ("floor", "bare AsyncLLM consumer (floor)"),
           ("floor_frames", "the floor + its frames to a socket"),
           ("floor_http", "the floor over HTTP: uvicorn + a bare ASGI app"))
WORDS = ("the server streams every token of the answer to the client while the engine keeps "
         "scheduling batches and the harmony parser splits reasoning from the final content").split()


def long_prompt(words: int = 750) -> str:
    return " ".join(WORDS[(i * 5) % len(WORDS)] for i in range(words))


def unavailable() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (pip install -e .[cpu])"
    for path in ("server/engine/vllm.py", "server/models/tiny.py"):
        if not (ROOT / path).exists():
            return f"{path} does not exist (our vLLM engine / tiny model)"
    return None


def _make_models(work: Path) -> dict[str, Path]:
    """The trained tiny model expanded from its artifact, and the random one; both with the
    tokenizer.json vLLM's own server needs (ours and the floor do not use it)."""
    code = ("import sys; from pathlib import Path; from server.models import artifact, tiny; "
            "w = Path(sys.argv[1]); "
            "tiny.write_tokenizer(artifact.expand(artifact.ARTIFACT, w / 'gpt-oss-tiny')); "
            "tiny.write_model_dir(w / 'gpt-oss-tiny-random', tokenizer=True)")
    made = subprocess.run([sys.executable, "-c", code, str(work)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    if made.returncode != 0:
        raise RuntimeError(f"writing the tiny models failed: {made.stderr[-300:]}")
    return {"trained": work / "gpt-oss-tiny", "random": work / "gpt-oss-tiny-random"}


def workloads(models: dict[str, Path], requests: int) -> dict[str, dict]:
    base = {"stream": True, "stream_options": {"include_usage": True}, "max_tokens": 256,
            "messages": [{"role": "user", "content": QUESTION}]}
    return {
        "trained": {"model": models["trained"], "flags": ENGINE, "requests": requests,
                    "body": {**base, "temperature": 0}, "ttft_1k": True, "frames": True},
        "random": {"model": models["random"], "flags": [*ENGINE, "--load-format", "dummy"],
                   "requests": max(16, requests // 2), "ttft_1k": False, "frames": False,
                   "body": {**base, "logit_bias": NO_CONTROL_TOKENS}},
    }


def _server_cmd(name: str, model: Path, flags: list[str], port: int) -> list[str]:
    if name == "floor_http":
        return [sys.executable, "-m", "loadtest.floor_http", "--model", str(model), "--port",
                str(port), "--prompt", QUESTION, "--", *flags]
    if name == "ours":
        return [sys.executable, "-m", "server", "--engine", "vllm", "--model", str(model),
                "--served-model-name", "gpt-oss-tiny", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--stream-interval", "1", *flags]
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "gpt-oss-tiny",
            *flags]


def _measure_server(name: str, load: dict, work: Path, tag: str, concurrency: int) -> dict:
    port = free_port()
    try:
        proc = Proc(_server_cmd(name, load["model"], load["flags"], port), port,
                    work / f"server-b-{tag}-{name}.log", env=ENV, timeout=400,
                    ready_path="/ready" if name == "ours" else "/v1/models")
    except RuntimeError as exc:
        return {"error": str(exc)}
    try:
        body = {"model": proc.model(), **load["body"]}
        run_batch({**body, "max_tokens": 4}, concurrency, concurrency, proc)  # warm-up
        # On the trained workload ours also answers the same requests with stream: false, its
        # batches alternating with the streamed ones: what the frames cost, apart from the rest
        json_body = ({**{k: v for k, v in body.items() if k != "stream_options"}, "stream": False}
                     if name == "ours" and load["frames"] else None)
        batches, json_batches = [], []
        for _ in range(ROUNDS):
            batches.append(run_batch(body, load["requests"], concurrency, proc))
            if json_body is not None:
                json_batches.append(run_batch(json_body, load["requests"], concurrency, proc))
        out = _summary(batches)
        if json_batches:
            out["json"] = _summary(json_batches)
        if load["ttft_1k"] and name != "floor_http":  # its prompt is fixed
            # The long text goes into the system message and the question is one the model was
            # trained on, so its reasoning starts at the 4th token on both servers (a long user
            # message is outside its training: it answers nothing visible, and TTFT is undefined).
            ttft_body = {**body, "max_tokens": 8,
                         "messages": [{"role": "system", "content": long_prompt()},
                                      {"role": "user", "content": QUESTION}]}
            t = run_batch(ttft_body, 12, 1, proc)
            out["failures"] += t.failures
            out["errors"] += t.errors
            out["ttft_1k_ms_median"] = round(statistics.median(t.ttft_ms), 2) if t.ttft_ms else None
        return out
    finally:
        proc.stop()


def _summary(batches: list) -> dict:
    b = median_batch(batches)
    return {"tokens": b.tokens, "failures": sum(x.failures for x in batches),
            "api_cpu_s": round(b.cpu_s, 3),
            "us_per_token": round(b.cpu_s / b.tokens * 1e6, 1) if b.tokens else None,
            "wall_s": round(b.wall_s, 2),
            "ttft_ms_median": round(statistics.median(b.ttft_ms), 2) if b.ttft_ms else None,
            "rounds": len(batches), "errors": [e for x in batches for e in x.errors]}


def _measure_floor(load: dict, work: Path, tag: str, concurrency: int,
                   frames: bool = False) -> dict:
    body = load["body"]
    cmd = [sys.executable, "-m", "loadtest.floor", "--model", str(load["model"]),
           "--requests", str(load["requests"]), "--concurrency", str(concurrency),
           "--max-tokens", str(body["max_tokens"]), "--prompt", QUESTION, "--rounds", str(ROUNDS),
           "--temperature", str(body.get("temperature", 1.0))]
    if "logit_bias" in body:
        cmd += ["--logit-bias", json.dumps(body["logit_bias"])]
    if load["ttft_1k"] and not frames:
        cmd += ["--long-system", long_prompt()]
    if frames:
        cmd += ["--frames"]
    log = work / f"server-b-{tag}-floor{'-frames' * frames}.log"
    done = subprocess.run([*cmd, "--", *load["flags"]], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env={**os.environ, **ENV})
    log.write_text(done.stdout + done.stderr)
    for line in done.stdout.splitlines():
        if line.startswith("FLOOR "):
            return json.loads(line[6:])
    return {"error": f"the floor exited {done.returncode}: {done.stderr[-300:]}"}


def part_b(args, work: Path) -> dict:
    reason = "--skip-vllm" if args.skip_vllm or args.quick else unavailable()
    if reason:
        return {"skipped": reason}
    models = _make_models(work)
    concurrency = 8
    out: dict = {"concurrency": concurrency, "max_tokens": 256}
    for tag, load in workloads(models, args.b_requests).items():
        rows = out[tag] = {"requests": load["requests"]}
        for name, _ in SERVERS:
            if name == "ours_json" or (name == "floor_frames" and not load["frames"]):
                continue  # ours_json: measured with ours, on the same server
            if name in ("floor", "floor_frames"):
                rows[name] = _measure_floor(load, work, tag, concurrency,
                                            frames=name == "floor_frames")
            else:
                rows[name] = _measure_server(name, load, work, tag, concurrency)
            whole = rows[name].pop("json", None)
            print(f"(b) {tag} {name}: {rows[name]}", flush=True)
            if whole is not None:
                rows["ours_json"] = whole
                print(f"(b) {tag} ours_json: {whole}", flush=True)
    return out


def _ratio(rows: dict, a: str, b: str) -> float | None:
    x, y = rows.get(a, {}).get("us_per_token"), rows.get(b, {}).get("us_per_token")
    return round(x / y, 2) if x and y else None


def markdown(b: dict) -> list[str]:
    out = ["## (b) Our server vs vLLM's own OpenAI server vs the floor, tiny gpt-oss, vLLM CPU engine",
           ""]
    if b.get("skipped"):
        return [*out, f"Skipped: {b['skipped']}"]
    out += [f"The same streamed requests on every side, {b['concurrency']} at a time, max_tokens "
            f"{b['max_tokens']}; CPU of the API process only (the EngineCore child excluded) per "
            "output token. **trained**: the trained gpt-oss-tiny, greedy 'What is the capital of "
            "France?' (reasoning, then the answer). **random**: the random-weight tiny gpt-oss with "
            "Harmony's control tokens suppressed (logit_bias -100 on ids 199998-200018) on every side, "
            "so each request runs all 256 tokens (which never open a Harmony message: no server sends "
            "text before the end). **floor**: loadtest/floor.py, a bare in-process AsyncLLM consumer "
            "of the same requests (our engine arguments, token ids in and out, no HTTP). **the floor "
            "over HTTP**: loadtest/floor_http.py, that consumer behind the least ASGI app that "
            "streams Chat's shape (the body parsed, a frame per output with message text, the "
            "usage, `[DONE]`; no validation, rendering, Harmony parsing, routing or middleware), on "
            "uvicorn configured as ours. **the floor + "
            "its frames** (trained only): the floor writing one SSE frame per output with message "
            "text, and one at the end, to a loopback socket read by another process: what any "
            "server streaming each token must add (`floor.py --frames`). **stream: false** "
            "(trained only): our server answering the same requests whole, one write each, its "
            "batches alternating with the streamed ones on the same server. Each side "
            f"runs {ROUNDS} batches after a warm-up and reports the median one. TTFT 1k: 12 "
            "sequential requests with a ~1k-token prompt (a long system message, then the question).",
            "",
            "| workload | server | requests | tokens | failures | API CPU s | **us CPU / token** | "
            "median TTFT ms | median TTFT 1k-prompt ms | wall s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for tag in ("trained", "random"):
        rows = b.get(tag, {})
        for name, label in SERVERS:
            if name not in rows:
                continue
            r = rows[name]
            if "error" in r:
                out.append(f"| {tag} | {label} | error: {r['error'][:120]} | | | | | | | |")
            else:
                out.append(f"| {tag} | {label} | {rows.get('requests')} | {r.get('tokens')} | "
                           f"{r.get('failures')} | {r.get('api_cpu_s')} | **{r.get('us_per_token')}** | "
                           f"{r.get('ttft_ms_median') or ''} | {r.get('ttft_1k_ms_median', '')} | "
                           f"{r.get('wall_s')} |")
    return out


def verdicts(b: dict) -> list[str]:
    if b.get("skipped"):
        return [f"- vs vLLM's own server and the floor: **not measured** ({b['skipped']})"]
    lines = []
    for tag in ("trained", "random"):
        rows = b.get(tag, {})
        for peer, target, what in (("floor", FLOOR_RATIO_TARGET, "the floor"),
                                   ("vllm", VLLM_RATIO_TARGET, "vLLM's own server")):
            ratio = _ratio(rows, "ours", peer)
            if ratio is None:
                lines.append(f"- {tag}: API CPU per token vs {what}: **incomplete**")
            else:
                lines.append(f"- {tag}: API CPU per token {ratio:.2f}x {what}, target <= {target}x: "
                             f"**{'met' if ratio <= target else 'missed'}**")
    trained = b.get("trained", {})
    ratio = _ratio(trained, "ours_json", "floor")
    streamed = trained.get("ours", {}).get("us_per_token")
    if ratio is not None and streamed:
        frames = streamed - trained["ours_json"]["us_per_token"]
        lines.append(f"- trained: ours with `stream: false` (the same requests, one write each) "
                     f"{ratio:.2f}x the floor: the frames cost ours {frames:+.1f} us a token "
                     "(information, no target)")
    ratio = _ratio(trained, "ours", "floor_frames")
    if ratio is not None:
        lines.append(f"- trained: API CPU per token {ratio:.2f}x the floor with its frames "
                     "(information, no target: the least a server streaming each token spends)")
    for tag in ("trained", "random"):
        rows = b.get(tag, {})
        http, ours = _ratio(rows, "floor_http", "floor"), _ratio(rows, "ours", "floor_http")
        if http is not None and ours is not None:
            lines.append(f"- {tag}: the floor over HTTP (uvicorn, no work of its own) {http:.2f}x "
                         f"the floor, ours {ours:.2f}x the floor over HTTP (information, no target: "
                         "what HTTP and the frames cost any Python server on uvicorn)")
    ours, peer = b.get("trained", {}).get("ours", {}), b.get("trained", {}).get("vllm", {})
    if ours.get("ttft_1k_ms_median") and peer.get("ttft_1k_ms_median"):
        extra = ours["ttft_1k_ms_median"] - peer["ttft_1k_ms_median"]
        lines.append(f"- Median TTFT, ~1k-token prompt: ours {ours['ttft_1k_ms_median']} ms, vLLM's "
                     f"{peer['ttft_1k_ms_median']} ms: difference {extra:+.1f} ms, target <= "
                     f"{TTFT_OVERHEAD_MS:g} ms: **{'met' if extra <= TTFT_OVERHEAD_MS else 'missed'}**")
    return lines


def chart(ax, b: dict) -> None:
    if b.get("skipped"):
        ax.text(0.5, 0.5, "(b) skipped:\n" + b["skipped"], ha="center", va="center", wrap=True,
                fontsize=9)
        ax.set_axis_off()
        return
    colors = {"ours": "tab:blue", "ours_json": "tab:cyan", "vllm": "tab:orange", "floor": "tab:grey",
              "floor_frames": "tab:green", "floor_http": "tab:olive"}
    for i, tag in enumerate(("trained", "random")):
        for j, (name, label) in enumerate(SERVERS):
            value = b.get(tag, {}).get(name, {}).get("us_per_token")
            if value:
                ax.bar(i + (j - 2.5) * 0.15, value, width=0.14, color=colors[name],
                       label=label if i == 0 else None)
    ax.set_xticks([0, 1], ["trained gpt-oss-tiny", "random, control tokens suppressed"])
    ax.set_ylabel("API process CPU us per output token")
    ax.set_title("(b) tiny gpt-oss on vLLM's CPU engine")
    ax.legend(fontsize=8)
