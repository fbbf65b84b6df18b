"""A decoding constraint (server.constraint) as token-level rules the engine can follow.

The rules are *routes*: each is a Harmony header as token ids, the token that ends the body
after it, whether the turn goes on after that end (``<|end|>``: another message follows, headed
by ``<|start|>assistant``) and the grammar of the body (a JSON schema, or None: free text). The
engine's logits processor (server.engine.constrained) walks them: while a header is being
written only tokens that continue some route's header are allowed; in a free body every
ordinary token and the body's end; in a constrained body what the grammar allows. So:

- analysis (reasoning) is always a route, with a free body: reasoning is never constrained away;
- a final answer, when allowed, has its own route, its body free or the schema;
- each allowed call has two routes, one per header order the model emits
  (``<|channel|>commentary to=functions.X`` and ``to=functions.X<|channel|>commentary``), both
  with ``<|constrain|>json``, its body the arguments' schema (strict tools) or free; and a
  commentary preamble may come before a call.
"""

from __future__ import annotations

from server.constraint import Constraint
from server.harmony.encoding import Harmony

EXTRA_ARG = "gptoss_constraint"  # the key of the rules in vLLM's SamplingParams.extra_args


def _route(header: list[int], end: int, grammar: tuple[str, bool] | None,
           continues: bool) -> dict:
    return {"header": header, "end": end, "continues": continues,
            "schema": grammar[0] if grammar else None,
            "strict": grammar[1] if grammar else False}


def engine_rules(harmony: Harmony, constraint: Constraint) -> dict:
    """The routes of ``constraint``, JSON-able (they travel to the engine's processes)."""
    s, plain = harmony.special, harmony.plain_tokens
    channel = [s.channel]
    routes = [_route([*channel, *plain("analysis"), s.message], s.end, None, True)]
    if constraint.final_allowed:
        routes.append(_route([*channel, *plain("final"), s.message], s.return_,
                             constraint.final, False))
    if constraint.calls_allowed and constraint.calls:
        routes.append(_route([*channel, *plain("commentary"), s.message], s.end, None, True))
        json_type = [*plain(" "), s.constrain, *plain("json")]
        for name, grammar in constraint.calls:
            recipient = plain(f" to=functions.{name}")
            routes.append(_route([*channel, *plain("commentary"), *recipient, *json_type,
                                  s.message], s.call, grammar, False))
            routes.append(_route([*recipient, *channel, *plain("commentary"), *json_type,
                                  s.message], s.call, grammar, False))
    return {"routes": routes, "again": [s.start, s.assistant],
            "specials": list(range(s.first, harmony.vocab_end))}
