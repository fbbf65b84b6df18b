"""Request limits and the checks of what gpt-oss cannot do, before any engine call.

Each limit is a setting (see config.py) with a safe default; each failure is a 400 in the
OpenAI envelope naming the offending parameter (the body-size limit is a 413 in app.py).
"""

from __future__ import annotations

import json

import orjson

from server.config import Settings
from server.errors import InvalidRequestError
from server.schemas.chat_request import CompletionCreateParams


def _fail(message: str, param: str) -> None:
    raise InvalidRequestError(message, param=param)


def _check_messages(request: CompletionCreateParams, settings: Settings) -> None:
    if len(request.messages) > settings.max_messages:
        _fail(f"at most {settings.max_messages} messages are allowed", "messages")
    total = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            total += len(content)
        elif content:
            total += sum(len(getattr(part, "text", "")) for part in content)
        for call in getattr(message, "tool_calls", None) or ():
            total += len(call.function.arguments)
        total += len(getattr(message, "reasoning_content", None) or "")
        total += len(getattr(message, "reasoning", None) or "")
    if total > settings.max_message_chars:
        _fail(f"messages hold {total} characters; at most {settings.max_message_chars} "
              "are allowed", "messages")


def _check_stop(stop: list[str], settings: Settings) -> None:
    if len(stop) > settings.max_stop_strings:
        _fail(f"at most {settings.max_stop_strings} stop strings are allowed", "stop")
    for s in stop:
        if not s:
            _fail("stop strings must not be empty", "stop")
        if len(s) > settings.max_stop_chars:
            _fail(f"stop strings may be at most {settings.max_stop_chars} characters", "stop")


def _json_size(value) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:  # an integer beyond 64 bits (orjson's limit): the slow exact way
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check_tools(request: CompletionCreateParams, settings: Settings) -> None:
    tools = request.tools or []
    if len(tools) > settings.max_tools:
        _fail(f"at most {settings.max_tools} tools are allowed", "tools")
    if tools and _json_size([t.model_dump() for t in tools]) > settings.max_tool_schema_bytes:
        _fail(f"tool definitions may be at most {settings.max_tool_schema_bytes} bytes of JSON",
              "tools")
    names = [t.function.name for t in tools]
    if len(set(names)) != len(names):
        _fail("tool names must be unique", "tools")
    choice = request.tool_choice
    if choice is not None and choice not in ("auto", "none"):
        _fail("only tool_choice 'auto' and 'none' are supported: forcing a call needs "
              "constrained decoding, which this server does not offer yet", "tool_choice")


def _check_logit_bias(request: CompletionCreateParams, settings: Settings,
                      vocab_size: int) -> dict[int, float]:
    bias = request.logit_bias or {}
    if len(bias) > settings.max_logit_bias:
        _fail(f"logit_bias may have at most {settings.max_logit_bias} entries", "logit_bias")
    parsed: dict[int, float] = {}
    for key, value in bias.items():
        try:
            token = int(key)
        except ValueError:
            token = -1
        if not 0 <= token < vocab_size:
            _fail(f"logit_bias key '{key}' is not a token id below {vocab_size}", "logit_bias")
        if not -100 <= value <= 100:
            _fail("logit_bias values must be between -100 and 100", "logit_bias")
        parsed[token] = value
    return parsed


def check_request(request: CompletionCreateParams, settings: Settings,
                  vocab_size: int) -> dict[int, float]:
    """Raise InvalidRequestError for any request over a limit; return the parsed logit_bias."""
    n = request.n or 1
    if n > settings.max_n:
        _fail(f"n may be at most {settings.max_n}", "n")
    if request.stream_options is not None and not request.stream:
        _fail("stream_options is only allowed when stream is true", "stream_options")
    if request.logprobs:
        _fail("logprobs are not supported by this server", "logprobs")
    if request.top_logprobs:  # OpenAI refuses it without logprobs too: never silently ignored
        _fail("top_logprobs needs logprobs, which this server does not support", "top_logprobs")
    if request.response_format is not None and request.response_format.type != "text":
        _fail("response_format other than 'text' needs constrained decoding, which this "
              "server does not offer yet", "response_format")
    _check_messages(request, settings)
    _check_stop(stop_strings(request), settings)
    _check_tools(request, settings)
    return _check_logit_bias(request, settings, vocab_size)


def stop_strings(request: CompletionCreateParams) -> list[str]:
    if request.stop is None:
        return []
    return [request.stop] if isinstance(request.stop, str) else list(request.stop)
