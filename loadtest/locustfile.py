"""Locust suite for an OpenAI-compatible chat completions server (gpt-oss-server, vLLM, ...).

Two users:

* ``StreamingUser`` (weight 4): ``stream: true`` with ``stream_options.include_usage``. Besides the
  HTTP request itself it records, as locust request events of type ``LLM``:

  ============================  ===========================================================
  ``time_to_first_token``       ms from sending to the first non-empty reasoning/content delta
                                (a tool-call delta counts too)
  ``inter_token_latency``       ms between consecutive non-empty deltas (one sample per gap)
  ``time_per_output_token``     (end-to-end - TTFT) / (output tokens - 1), ms, per request
  ``end_to_end_latency``        ms from sending to ``data: [DONE]``
  ``output_tokens``             completion tokens from the usage chunk (the "ms" columns hold
                                the count)
  ``reasoning_tokens``          ``completion_tokens_details.reasoning_tokens``
  ``content_tokens``            output tokens - reasoning tokens
  ``tool_calls``                tool calls in the response (one sample per request)
  ============================  ===========================================================

* ``NonStreamingUser`` (weight 1): one JSON response; records ``end_to_end_latency`` and the
  token counts (names prefixed ``nonstream_``).

A request fails (a locust failure) on a non-200 status, a transport error, an error frame in the
stream, a stream that ends without ``[DONE]``, or a missing usage block.

Custom options (``locust -f loadtest/locustfile.py --help``): ``--model``, ``--api-key``,
``--max-tokens``, ``--reasoning-effort-mix`` (``low:1,medium:2,high:1``), ``--tool-share``,
``--prompt-set`` (``short``, ``medium``, ``long``, ``chat``, ``mixed``, ``tiny`` or a path to a JSONL
file),
``--max-failure-ratio`` and ``--max-p95-ttft-ms``. At the end of the run the process exit code is 1
when the failure ratio of the chat requests or the p95 time to first token is above its threshold,
else 0. Run only one user class by naming it: ``locust -f loadtest/locustfile.py StreamingUser``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import requests
from locust import User, between, constant, events, task  # noqa: F401

log = logging.getLogger("loadtest")

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
PROMPT_SETS = ("short", "medium", "long", "chat")  # "mixed" is all four
# What the built-in gpt-oss-tiny was trained to answer (sums, capitals, greetings, get_weather calls
# and the answers after their results): against it, the figures include reasoning, content and
# tool calls. Other models answer it too; it is only small.
TINY_SET = "tiny"
ENDPOINT = "/v1/chat/completions"
STREAM_NAME = f"{ENDPOINT} [stream]"
PLAIN_NAME = f"{ENDPOINT} [non-stream]"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
TOOL_PROMPTS = ["What's the weather in Paris right now?", "Is it raining in Tokyo?",
                "Should I take a jacket in Berlin today? Check the weather."]


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    group = parser.add_argument_group("LLM load test (loadtest/locustfile.py)")
    group.add_argument("--model", default="", help="Model name; empty: the first of GET /v1/models.")
    group.add_argument("--api-key", default="", help="Bearer token sent with every request.")
    group.add_argument("--max-tokens", type=int, default=256, help="max_tokens of each request.")
    group.add_argument("--reasoning-effort-mix", default="",
                       help="Weighted reasoning_effort mix, e.g. 'low:1,medium:2,high:1' (empty: not sent).")
    group.add_argument("--tool-share", type=float, default=0.0,
                       help="Share (0..1) of requests that send a tool and a tool-calling prompt.")
    group.add_argument("--prompt-set", default="mixed",
                       help="short, medium, long, chat, mixed (those four), tiny (what the built-in "
                            "gpt-oss-tiny understands) or a JSONL file path.")
    group.add_argument("--seed", type=int, default=None,
                       help="Seed the request mix (prompts, tool share, efforts): the same seed "
                            "draws the same sequence of requests (default: unseeded).")
    group.add_argument("--max-failure-ratio", type=float, default=0.0,
                       help="Exit non-zero when failed/total chat requests is above this.")
    group.add_argument("--max-p95-ttft-ms", type=float, default=0.0,
                       help="Exit non-zero when the p95 time to first token is above this (0: no limit).")


# ---------------------------------------------------------------------------------------------
# Request building

def load_prompts(name: str) -> list[dict]:
    """Requests (``messages``, and ``tools`` where a line has them) from a bundled set or a JSONL
    file whose lines have ``messages`` (and optionally ``tools``) or ``prompt``."""
    if name == "mixed":
        paths = [PROMPT_DIR / f"{n}.jsonl" for n in PROMPT_SETS]
    elif name in (*PROMPT_SETS, TINY_SET):
        paths = [PROMPT_DIR / f"{name}.jsonl"]
    else:
        paths = [Path(name)]
    out = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if "messages" in record:
                out.append({key: record[key] for key in ("messages", "tools") if key in record})
            else:
                out.append({"messages": [{"role": "user", "content": record["prompt"]}]})
    if not out:
        raise ValueError(f"prompt set {name!r} is empty")
    return out


def parse_mix(text: str) -> tuple[list[str], list[float]]:
    if not text.strip():
        return [], []
    names, weights = [], []
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        if name not in ("low", "medium", "high"):
            raise ValueError(f"reasoning effort {name!r}: use low, medium or high")
        names.append(name)
        weights.append(float(weight or 1))
    return names, weights


# One generator for every user of this process, so that --seed fixes the sequence of requests.
RNG = random.Random()


@events.test_start.add_listener
def _seed(environment, **_kwargs) -> None:
    if environment.parsed_options and environment.parsed_options.seed is not None:
        RNG.seed(environment.parsed_options.seed)


class RequestFactory:
    def __init__(self, options, model: str) -> None:
        self.model = model
        self.max_tokens = options.max_tokens
        self.prompts = load_prompts(options.prompt_set)
        self.efforts, self.effort_weights = parse_mix(options.reasoning_effort_mix)
        self.tool_share = options.tool_share

    def body(self, stream: bool) -> dict:
        body: dict = {"model": self.model, "max_tokens": self.max_tokens, "stream": stream}
        if self.tool_share and RNG.random() < self.tool_share:
            body["messages"] = [{"role": "user", "content": RNG.choice(TOOL_PROMPTS)}]
            body["tools"] = [WEATHER_TOOL]
        else:
            body.update(RNG.choice(self.prompts))
        if self.efforts:
            body["reasoning_effort"] = RNG.choices(self.efforts, self.effort_weights)[0]
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body


def headers(options) -> dict:
    h = {"Content-Type": "application/json"}
    if options.api_key:
        h["Authorization"] = f"Bearer {options.api_key}"
    return h


def resolve_model(host: str, options) -> str:
    if options.model:
        return options.model
    try:
        r = requests.get(host.rstrip("/") + "/v1/models", headers=headers(options), timeout=10)
        r.raise_for_status()
        return r.json()["data"][0]["id"]
    except Exception as exc:  # noqa: BLE001 - fall through, the requests will fail and be counted
        log.warning("could not read /v1/models (%s); pass --model", exc)
        return "unknown"


# ---------------------------------------------------------------------------------------------
# Users

class StreamFailure(Exception):
    pass


class _ChatUser(User):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.base = self.host.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(headers(options))
        self.factory = RequestFactory(options, resolve_model(self.host, options))

    def on_stop(self) -> None:
        self.session.close()

    def metric(self, name: str, value: float, length: int = 0) -> None:
        self.environment.events.request.fire(
            request_type="LLM", name=name, response_time=value, response_length=length,
            exception=None, context={})

    def report(self, name: str, start_perf: float, length: int, exception) -> None:
        self.environment.events.request.fire(
            request_type="POST", name=name, response_time=(time.perf_counter() - start_perf) * 1000,
            response_length=length, exception=exception, context={})


class StreamingUser(_ChatUser):
    weight = 4

    @task
    def chat_stream(self) -> None:
        body = self.factory.body(stream=True)
        start = time.perf_counter()
        length = 0
        first = last = None
        gaps: list[float] = []
        usage = None
        calls: set[tuple[int, int]] = set()  # (choice index, tool call index)
        done = False
        try:
            with self.session.post(self.base + ENDPOINT, data=json.dumps(body), stream=True,
                                   timeout=(10, 600)) as response:
                if response.status_code != 200:
                    raise StreamFailure(f"HTTP {response.status_code}: {response.text[:200]}")
                for raw in response.iter_lines(chunk_size=None):
                    if not raw:
                        continue
                    length += len(raw)
                    if not raw.startswith(b"data:"):
                        continue
                    data = raw[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        break
                    frame = json.loads(data)
                    if "error" in frame:
                        raise StreamFailure(f"error frame: {frame['error']}")
                    if frame.get("usage"):
                        usage = frame["usage"]
                    has_token = False  # one arrival per frame, whichever choices it carries
                    for choice in frame.get("choices") or ():
                        delta = choice.get("delta") or {}
                        calls.update((choice.get("index", 0), call.get("index", 0))
                                     for call in delta.get("tool_calls") or ())
                        has_token = has_token or bool(
                            delta.get("content") or delta.get("reasoning_content")
                            or delta.get("reasoning") or delta.get("tool_calls"))
                    if has_token:
                        now = time.perf_counter()
                        if first is None:
                            first = now
                        else:
                            gaps.append((now - last) * 1000)
                        last = now
            end = time.perf_counter()
            if not done:
                raise StreamFailure("stream ended without [DONE]")
            if usage is None:
                raise StreamFailure("no usage chunk (stream_options.include_usage)")
            if first is None:
                raise StreamFailure("no token in the stream")
        except Exception as exc:  # noqa: BLE001 - every failure counts as a locust failure
            self.report(STREAM_NAME, start, length, exc)
            return
        self.report(STREAM_NAME, start, length, None)
        tokens = int(usage.get("completion_tokens") or 0)
        reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
        self.metric("time_to_first_token", (first - start) * 1000)
        for gap in gaps:
            self.metric("inter_token_latency", gap)
        if tokens > 1:
            self.metric("time_per_output_token", (end - first) * 1000 / (tokens - 1))
        self.metric("end_to_end_latency", (end - start) * 1000, length)
        self.metric("output_tokens", tokens)
        self.metric("reasoning_tokens", reasoning)
        self.metric("content_tokens", tokens - reasoning)
        self.metric("tool_calls", len(calls))


class NonStreamingUser(_ChatUser):
    weight = 1

    @task
    def chat(self) -> None:
        body = self.factory.body(stream=False)
        start = time.perf_counter()
        length = 0
        try:
            response = self.session.post(self.base + ENDPOINT, data=json.dumps(body), timeout=(10, 600))
            length = len(response.content)
            if response.status_code != 200:
                raise StreamFailure(f"HTTP {response.status_code}: {response.text[:200]}")
            usage = response.json().get("usage")
            if not usage:
                raise StreamFailure("no usage in the response")
        except Exception as exc:  # noqa: BLE001
            self.report(PLAIN_NAME, start, length, exc)
            return
        elapsed = (time.perf_counter() - start) * 1000
        self.report(PLAIN_NAME, start, length, None)
        tokens = int(usage.get("completion_tokens") or 0)
        reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
        self.metric("nonstream_end_to_end_latency", elapsed, length)
        self.metric("nonstream_output_tokens", tokens)
        self.metric("nonstream_reasoning_tokens", reasoning)


# ---------------------------------------------------------------------------------------------
# Thresholds -> exit code

def evaluate(environment) -> tuple[int, list[str]]:
    """Exit code and a line per check, from the chat requests (the LLM metric rows excluded)."""
    options = environment.parsed_options
    stats = environment.stats
    total = failed = 0
    for name in (STREAM_NAME, PLAIN_NAME):
        entry = stats.entries.get((name, "POST"))
        if entry:
            total += entry.num_requests
            failed += entry.num_failures
    lines, code = [], 0
    ratio = failed / total if total else 1.0
    ok = total > 0 and ratio <= options.max_failure_ratio
    lines.append(f"failure ratio {ratio:.4f} ({failed}/{total} chat requests), "
                 f"limit {options.max_failure_ratio}: {'ok' if ok else 'FAIL'}")
    code |= not ok
    ttft = stats.entries.get(("time_to_first_token", "LLM"))
    if options.max_p95_ttft_ms:
        if ttft and ttft.num_requests:
            p95 = ttft.get_response_time_percentile(0.95)
            ok = p95 <= options.max_p95_ttft_ms
            lines.append(f"p95 time to first token {p95:.1f} ms, limit {options.max_p95_ttft_ms} ms: "
                         f"{'ok' if ok else 'FAIL'}")
        else:
            ok = False
            lines.append("p95 time to first token: no samples: FAIL")
        code |= not ok
    return int(code), lines


@events.quitting.add_listener
def _set_exit_code(environment, **_kwargs) -> None:
    code, lines = evaluate(environment)
    for line in lines:
        log.info("threshold: %s", line)
    environment.process_exit_code = code
