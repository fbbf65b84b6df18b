"""Decoding constraints, surface-neutral: what a plan asks the decoder to guarantee.

A ``Constraint`` says which Harmony messages the model may write and which bodies a grammar
shapes: reasoning (analysis) always stays free; ``final`` constrains the final answer's body
(a JSON schema, or any JSON object) or forbids a final answer (a call is required); ``calls``
names the functions the model may call, each with a schema for its arguments (strict tools) or
none (free arguments). Surfaces build one from ``response_format`` / ``text.format``,
``tool_choice`` and strict tools; ``server.harmony.constrain`` turns it into token-level rules
for the engine.

Schemas are validated here, in the API process, before any engine call: too big, too deep, not
an object, unknown types, a regex that does not compile, unsupported keywords -> a 400 naming
the parameter. xgrammar (installed with vLLM) converts them; each distinct schema is converted
once (an LRU cache), and again once per engine process when compiled to the vocabulary.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

from server.errors import InvalidRequestError

ANY_OBJECT = '{"type": "object"}'  # json_object / a tool without parameters
_XGRAMMAR_PREFIX = re.compile(r"^\[[\d:]+\] \S+:\d+: ")


Grammar = tuple[str, bool]  # (a JSON schema's canonical text, strict: no extra properties)


@dataclass(frozen=True, slots=True)
class Constraint:
    final: Grammar | None = None  # the final answer's schema; None: free text
    final_allowed: bool = True  # False: the turn must end in a call
    calls: tuple[tuple[str, Grammar | None], ...] = ()  # (function, its arguments' schema)
    calls_allowed: bool = True  # False: no call may be made


def _depth(value, limit: int, level: int = 0) -> int:
    if level > limit:
        return level
    if isinstance(value, dict):
        return max((_depth(v, limit, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, limit, level + 1) for v in value), default=level)
    return level


@functools.lru_cache(maxsize=512)
def _convert(text: str, strict: bool) -> str | None:
    """None if xgrammar converts the schema, else its error."""
    try:
        import xgrammar
    except ImportError:  # pragma: no cover - vLLM brings it
        return "constrained decoding needs xgrammar, which is installed with vLLM"
    try:
        xgrammar.Grammar.from_json_schema(text, strict_mode=strict, any_whitespace=False)
    except Exception as exc:  # noqa: BLE001 - xgrammar raises RuntimeError with a C++ trace
        # its last line, without the "[hh:mm:ss] /path/of/its/source.cc:123: " it begins with
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        return _XGRAMMAR_PREFIX.sub("", message) or type(exc).__name__
    return None


def checked_schema(schema, param: str, settings, strict: bool = True) -> Grammar:
    """A JSON schema that xgrammar accepts, as a Grammar; else a 400 naming ``param``."""
    if schema is None:
        return ANY_OBJECT, False
    if not isinstance(schema, dict):
        raise InvalidRequestError("the schema must be a JSON object", param=param)
    text = json.dumps(schema, ensure_ascii=False, separators=(",", ":"))  # keeps key order
    if len(text.encode()) > settings.max_schema_bytes:
        raise InvalidRequestError(
            f"the schema is {len(text.encode())} bytes of JSON; at most "
            f"{settings.max_schema_bytes} are allowed (--max-schema-bytes)", param=param)
    if _depth(schema, settings.max_schema_depth) > settings.max_schema_depth:
        raise InvalidRequestError(
            f"the schema nests deeper than {settings.max_schema_depth} levels "
            "(--max-schema-depth)", param=param)
    error = _convert(text, strict)
    if error is not None:
        raise InvalidRequestError(f"the schema cannot be used for constrained decoding: {error}",
                                  param=param)
    return text, strict


def final_grammar(kind: str | None, schema, strict: bool | None, param: str,
                  settings) -> Grammar | None:
    """The final answer's grammar for a response format: ``json_object`` (any object),
    ``json_schema`` (its schema, at ``param``), anything else (text) none."""
    if kind == "json_object":
        return ANY_OBJECT, False
    if kind != "json_schema":
        return None
    if schema is None:
        raise InvalidRequestError("a json_schema format needs a schema", param=param)
    return checked_schema(schema, param, settings, strict=bool(strict))


def plan_constraint(tools, settings, *, final: Grammar | None = None, required: bool = False,
                    named: str | None = None, named_param: str = "tool_choice",
                    tool_param=lambda i: f"tools.{i}.parameters") -> Constraint | None:
    """The constraint of a request, from its (rendered) tools, final-answer schema and tool
    choice; None when nothing needs constraining. Strict tools' arguments are constrained
    whenever they are called, under ``auto`` too. When a call is forced (required or named),
    every callable tool's arguments follow its declared schema, a non-strict tool's in
    xgrammar's non-strict mode (properties the schema does not forbid may be added): a call the
    model did not mean to make would otherwise get free-text arguments, often not JSON at all."""
    if (required or named is not None) and not tools:
        raise InvalidRequestError("tool_choice requires a call, but no tools are declared",
                                  param="tool_choice")
    if named is not None and named not in {t.name for t in tools}:
        raise InvalidRequestError(f"tool_choice names '{named}', which is not a declared tool",
                                  param=named_param)
    forced = required or named is not None
    calls = tuple((t.name, checked_schema(t.parameters, tool_param(i), settings,
                                          strict=bool(t.strict))
                   if t.strict or forced else None)
                  for i, t in enumerate(tools) if named is None or t.name == named)
    if final is None and not required and named is None and not any(g for _, g in calls):
        return None
    return Constraint(final=final, final_allowed=not (required or named is not None),
                      calls=calls, calls_allowed=bool(calls))
