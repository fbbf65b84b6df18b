"""Request limits, checked on the neutral plan before any engine call.

Each limit is a setting (see config.py) with a safe default; each failure is a 400 naming the
offending parameter, the limit and the flag that changes it (the body-size limit is a 413 in
the middleware). What a surface cannot express (Chat's logprobs, Responses' built-in tools...)
its adapter refuses itself.
"""

from __future__ import annotations

import json

import orjson

from server.config import Settings
from server.errors import InvalidRequestError
from server.plan import Plan, Tool


def _fail(message: str, param: str) -> None:
    raise InvalidRequestError(message, param=param)


def check_count(count: int, limit: int, param: str, flag: str = "--max-messages") -> None:
    """The number of input messages or items a surface received."""
    if count > limit:
        _fail(f"{param} has {count} entries; at most {limit} are allowed ({flag})", param)


def _check_chars(plan: Plan, settings: Settings) -> None:
    conversation = plan.conversation
    if conversation is None:
        return
    total = sum(len(text) for text in conversation.instructions)
    total += sum(len(message.text) for message in conversation.messages)
    if total > settings.max_message_chars:
        _fail(f"{plan.input_param} hold {total} characters; at most "
              f"{settings.max_message_chars} are allowed (--max-message-chars)", plan.input_param)


def _check_stop(stop: list[str], settings: Settings, param: str) -> None:
    if len(stop) > settings.max_stop_strings:
        _fail(f"{param} has {len(stop)} strings; at most {settings.max_stop_strings} stop "
              "strings are allowed (--max-stop-strings)", param)
    for s in stop:
        if not s:
            _fail(f"{param}: stop strings must not be empty", param)
        if len(s) > settings.max_stop_chars:
            _fail(f"{param}: a stop string has {len(s)} characters; at most "
                  f"{settings.max_stop_chars} are allowed (--max-stop-chars)", param)


def _json_size(value) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:  # an integer beyond 64 bits (orjson's limit): the slow exact way
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check_tools(tools: list[Tool], settings: Settings) -> None:
    if len(tools) > settings.max_tools:
        _fail(f"tools has {len(tools)} entries; at most {settings.max_tools} tools are allowed "
              "(--max-tools)", "tools")
    size = _json_size([[t.name, t.description, t.parameters] for t in tools]) if tools else 0
    if size > settings.max_tool_schema_bytes:
        _fail(f"tool definitions take {size} bytes of JSON; at most "
              f"{settings.max_tool_schema_bytes} are allowed (--max-tool-schema-bytes)", "tools")
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        _fail(f"tool names must be unique; '{twice}' is declared more than once", "tools")


def _check_logit_bias(bias: dict[str, float], settings: Settings,
                      vocab_size: int) -> dict[int, float]:
    if len(bias) > settings.max_logit_bias:
        _fail(f"logit_bias has {len(bias)} entries; at most {settings.max_logit_bias} are "
              "allowed (--max-logit-bias)", "logit_bias")
    parsed: dict[int, float] = {}
    for key, value in bias.items():
        try:
            token = int(key)
        except ValueError:
            token = -1
        if not 0 <= token < vocab_size:
            _fail(f"logit_bias key '{key}' is not a token id of this model (0 to "
                  f"{vocab_size - 1})", "logit_bias")
        if not -100 <= value <= 100:
            _fail(f"logit_bias values must be between -100 and 100 ('{key}' has {value})",
                  "logit_bias")
        parsed[token] = value
    return parsed


def check_plan(plan: Plan, settings: Settings, vocab_size: int) -> dict[int, float]:
    """Raise InvalidRequestError for any plan over a limit; return the parsed logit_bias."""
    if plan.n > settings.max_n:
        _fail(f"n is {plan.n}; at most {settings.max_n} is allowed (--max-n)", "n")
    _check_chars(plan, settings)
    _check_stop(plan.stop, settings, plan.stop_param)
    if plan.conversation is not None:
        _check_tools(plan.conversation.tools, settings)
    return _check_logit_bias(plan.sampling.logit_bias or {}, settings, vocab_size)
