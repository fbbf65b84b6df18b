"""Our Prometheus series (prefix ``gptoss_``), in the default registry beside vLLM's ``vllm:*``.

Defined once per process at import, so several apps in one test process share them. Labels
carry routes, statuses and reasons only: never user text, model output or keys.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN_GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)

REQUESTS = Counter("gptoss_requests_total", "HTTP requests by route and status.",
                   ["route", "status"])
REQUEST_LATENCY = Histogram("gptoss_request_duration_seconds",
                            "Time from request to the end of the response.", ["route"],
                            buckets=_LATENCY_BUCKETS)
TIME_TO_FIRST_TOKEN = Histogram("gptoss_time_to_first_token_seconds",
                                "Time from request to the first generated token.",
                                buckets=_LATENCY_BUCKETS)
INTER_TOKEN_LATENCY = Histogram("gptoss_inter_token_latency_seconds",
                                "Mean time between engine steps, one sample per generation.",
                                buckets=_TOKEN_GAP_BUCKETS)
PROMPT_TOKENS = Counter("gptoss_prompt_tokens_total", "Prompt tokens of finished requests.")
COMPLETION_TOKENS = Counter("gptoss_completion_tokens_total", "Generated tokens.")
REASONING_TOKENS = Counter("gptoss_reasoning_tokens_total", "Generated analysis-channel tokens.")
IN_FLIGHT = Gauge("gptoss_requests_in_flight", "Chat completions being generated.")
QUEUED = Gauge("gptoss_requests_queued", "Chat completions waiting for an admission slot.")
ABORTS = Counter("gptoss_aborts_total", "Generations stopped before the engine finished.",
                 ["reason"])
REJECTED = Counter("gptoss_rejected_total", "Requests refused by admission control.", ["reason"])
HARMONY_PARSE_ERRORS = Counter("gptoss_harmony_parse_errors_total",
                               "Generations whose Harmony output could not be parsed.")
AUTH_FAILURES = Counter("gptoss_auth_failures_total", "Requests refused for a missing or bad key.")
ENGINE_RUNNING = Gauge("gptoss_engine_requests_running", "Requests the engine is running.")
ENGINE_WAITING = Gauge("gptoss_engine_requests_waiting", "Requests waiting in the engine.")
STORE_EVICTIONS = Counter("gptoss_response_store_evictions_total",
                          "Stored responses evicted, by reason (ttl, count, bytes, too_large).",
                          ["reason"])
