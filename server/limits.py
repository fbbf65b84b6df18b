"""Request limits, checked on the neutral plan before any engine call.

Each limit is a setting (see config.py) with a safe default; each failure is a 400 naming the
offending parameter (the body-size limit is a 413 in the middleware). What a surface cannot
express (Chat's logprobs, Responses' built-in tools...) its adapter refuses itself.
"""

from __future__ import annotations

import json

import orjson

from server.config import Settings
from server.errors import InvalidRequestError
from server.plan import Plan, Tool


def _fail(message: str, param: str) -> None:
    raise InvalidRequestError(message, param=param)


def check_count(count: int, limit: int, param: str) -> None:
    """The number of input messages or items a surface received."""
    if count > limit:
        _fail(f"at most {limit} {param} are allowed", param)


def _check_chars(plan: Plan, settings: Settings) -> None:
    conversation = plan.conversation
    if conversation is None:
        return
    total = sum(len(text) for text in conversation.instructions)
    total += sum(len(message.text) for message in conversation.messages)
    if total > settings.max_message_chars:
        _fail(f"{plan.input_param} hold {total} characters; at most "
              f"{settings.max_message_chars} are allowed", plan.input_param)


def _check_stop(stop: list[str], settings: Settings, param: str) -> None:
    if len(stop) > settings.max_stop_strings:
        _fail(f"at most {settings.max_stop_strings} stop strings are allowed", param)
    for s in stop:
        if not s:
            _fail("stop strings must not be empty", param)
        if len(s) > settings.max_stop_chars:
            _fail(f"stop strings may be at most {settings.max_stop_chars} characters", param)


def _json_size(value) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:  # an integer beyond 64 bits (orjson's limit): the slow exact way
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check_tools(tools: list[Tool], settings: Settings) -> None:
    if len(tools) > settings.max_tools:
        _fail(f"at most {settings.max_tools} tools are allowed", "tools")
    if tools and _json_size([[t.name, t.description, t.parameters] for t in tools]) \
            > settings.max_tool_schema_bytes:
        _fail(f"tool definitions may be at most {settings.max_tool_schema_bytes} bytes of JSON",
              "tools")
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        _fail("tool names must be unique", "tools")


def _check_logit_bias(bias: dict[str, float], settings: Settings,
                      vocab_size: int) -> dict[int, float]:
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


def check_plan(plan: Plan, settings: Settings, vocab_size: int) -> dict[int, float]:
    """Raise InvalidRequestError for any plan over a limit; return the parsed logit_bias."""
    if plan.n > settings.max_n:
        _fail(f"n may be at most {settings.max_n}", "n")
    _check_chars(plan, settings)
    _check_stop(plan.stop, settings, plan.stop_param)
    if plan.conversation is not None:
        _check_tools(plan.conversation.tools, settings)
    return _check_logit_bias(plan.sampling.logit_bias or {}, settings, vocab_size)
