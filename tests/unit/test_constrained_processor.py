"""The constrained-decoding processor without an engine: a simulated model samples from random
logits that the processor masks, token by token, and the Harmony decoder reads the result.
Whatever the logits, every generation must be well-formed Harmony that obeys its constraint:
reasoning free, the final answer's JSON valid, the required or named call made with valid
arguments, in either header order. Skips where vLLM (which brings torch and xgrammar) is absent.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from server.constraint import ANY_OBJECT, Constraint
from server.events import ArgumentsDelta, ContentDelta, Finish, ItemKind, ItemStart
from server.harmony.constrain import engine_rules
from server.harmony.decode import ChoiceDecoder

torch = pytest.importorskip("torch")
pytest.importorskip("vllm")
constrained = pytest.importorskip("server.engine.constrained")

VOCAB = 201088
WEATHER = {"type": "object", "properties": {
    "city": {"type": "string", "enum": ["Paris", "Rome"]}, "sunny": {"type": "boolean"},
    "degrees": {"type": "integer", "minimum": -30, "maximum": 45}},
    "required": ["city", "sunny", "degrees"], "additionalProperties": False}
STOCK = {"type": "object", "properties": {
    "ticker": {"type": "string", "maxLength": 5}, "qty": {"type": "integer", "minimum": 1,
                                                          "maximum": 9}},
    "required": ["ticker", "qty"], "additionalProperties": False}


def _grammar(schema: dict) -> tuple[str, bool]:
    return json.dumps(schema), True


def simulate(harmony, constraint: Constraint, seed: int, max_steps: int = 600,
             boost: dict[str, float] | None = None) -> list[int]:
    """Sample a generation from random logits masked by the processor's rules; ``boost``
    raises the logits of some texts' tokens (a model that likes to close its JSON)."""
    generator = torch.Generator().manual_seed(seed)
    special = harmony.special
    ends = torch.tensor([special.end, special.return_, special.call])
    output: list[int] = []
    request = constrained._Request(engine_rules(harmony, constraint), output, VOCAB)
    for _ in range(max_steps):
        logits = torch.randn(VOCAB, generator=generator) * 3
        logits[ends] += 10  # a model that ends its messages now and then
        for text, value in (boost or {}).items():
            logits[harmony.encode_completion(text)[0]] += value
        request.mask(logits)
        token = int(logits.argmax())  # the logits are noise: their argmax is a sample
        output.append(token)
        request.catch_up()
        if token in (special.return_, special.call):
            break
    return output


def decode(harmony, tokens: list[int]) -> tuple[list, Finish]:
    decoder = ChoiceDecoder(harmony, 0, ["lookup_stock", "get_weather"])
    events: list = []
    decoder.feed(tokens, events)
    decoder.finish("stop", 1, events)
    assert not decoder.failed, harmony.decode_text(tokens)
    return events, events[-1]


def calls(events) -> list[tuple[str, str]]:
    found = []
    for event in events:
        if isinstance(event, ItemStart) and event.kind is ItemKind.TOOL_CALL:
            found.append([event.name, ""])
        elif isinstance(event, ArgumentsDelta):
            found[-1][1] += event.text
    return [tuple(call) for call in found]


@pytest.mark.parametrize("seed", range(12))
def test_final_answer_follows_the_schema(harmony, seed):
    tokens = simulate(harmony, Constraint(final=_grammar(WEATHER)), seed)
    events, finish = decode(harmony, tokens)
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    jsonschema.validate(json.loads(content), WEATHER)
    assert not calls(events) and tokens[-1] == harmony.special.return_


BOUNDED = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                            "code": {"type": "string", "minLength": 2}},
           "required": ["name", "code"], "additionalProperties": False}


@pytest.mark.parametrize("seed", range(6))
def test_no_raw_control_character_in_length_bounded_strings(harmony, seed):
    """xgrammar's grammar for a string with minLength/maxLength lets raw control characters
    in; a model that likes them (as a retrained gpt-oss-tiny did) must still write valid JSON."""
    tokens = simulate(harmony, Constraint(final=_grammar(BOUNDED)), seed,
                      boost={"\x19": 14, "\t": 14, "\x01": 14, '"': 6})
    events, _ = decode(harmony, tokens)
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    jsonschema.validate(json.loads(content), BOUNDED)


@pytest.mark.parametrize("seed", range(6))
def test_json_object(harmony, seed):
    tokens = simulate(harmony, Constraint(final=(ANY_OBJECT, False)), seed,
                      boost={"}": 13, '"': 13, ":": 13, ",": 10})
    events, _ = decode(harmony, tokens)
    assert tokens[-1] == harmony.special.return_
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert isinstance(json.loads(content), dict)


@pytest.mark.parametrize("seed", range(12))
def test_required_call_is_made_with_valid_arguments(harmony, seed):
    constraint = Constraint(final_allowed=False, calls=(("lookup_stock", _grammar(STOCK)),
                                                        ("get_weather", _grammar(WEATHER))))
    tokens = simulate(harmony, constraint, seed)
    events, finish = decode(harmony, tokens)
    [(name, arguments)] = calls(events)
    jsonschema.validate(json.loads(arguments), STOCK if name == "lookup_stock" else WEATHER)
    assert finish.tool_calls == 1 and tokens[-1] == harmony.special.call


@pytest.mark.parametrize("seed", range(8))
def test_named_call_is_that_function(harmony, seed):
    constraint = Constraint(final_allowed=False, calls=(("get_weather", None),))
    tokens = simulate(harmony, constraint, seed)
    events, _ = decode(harmony, tokens)
    assert [name for name, _ in calls(events)] in (["get_weather"], [])
    assert harmony.special.return_ not in tokens  # never a final answer


def test_both_header_orders_are_routes(harmony):
    rules = engine_rules(harmony, Constraint(final_allowed=False,
                                             calls=(("get_weather", None),)))
    headers = [harmony.decode_text(route["header"]) for route in rules["routes"]]
    assert headers == [
        "<|channel|>analysis<|message|>",
        "<|channel|>commentary<|message|>",
        "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>",
        " to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>"]
    for route in rules["routes"]:  # whatever the header, the decoder reads it
        events, _ = decode(harmony, [*route["header"], *harmony.encode_completion("{}"),
                                     route["end"]])


def test_reasoning_is_never_constrained(harmony):
    """Inside the analysis body only control tokens are masked (and <|end|> allowed)."""
    output: list[int] = []
    request = constrained._Request(
        engine_rules(harmony, Constraint(final=_grammar(WEATHER))), output, VOCAB)
    output += [*harmony.encode_completion("<|channel|>analysis<|message|>")]
    request.catch_up()
    logits = torch.zeros(VOCAB)
    request.mask(logits)
    allowed = torch.isfinite(logits).nonzero().flatten().tolist()
    assert len(allowed) == harmony.special.first + 1 and harmony.special.end in allowed


def test_a_token_outside_the_routes_turns_the_constraint_off(harmony):
    output: list[int] = []
    request = constrained._Request(
        engine_rules(harmony, Constraint(final=_grammar(WEATHER))), output, VOCAB)
    output.append(harmony.encode_completion("hello")[0])  # not a header token
    request.catch_up()
    logits = torch.zeros(VOCAB)
    request.mask(logits) if request.phase in (0, 1) else None
    assert request.phase == constrained._OFF


def simulate_engine(harmony, constraint: Constraint, seed: int, async_scheduling: bool,
                    max_steps: int = 600) -> list[int]:
    """Drive the processor as vLLM's model runner does: one batch update adding the request,
    then per step update_state and apply. With async scheduling the token sampled last step
    is a placeholder (-1) at update_state and filled in just before apply."""
    from types import SimpleNamespace

    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate

    config = SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: VOCAB))
    processor = constrained.HarmonyConstraints(config, torch.device("cpu"), False)
    params = SamplingParams(extra_args={constrained.EXTRA_ARG: engine_rules(harmony, constraint)})
    output: list[int] = []
    update = BatchUpdate(batch_size=1, removed=[], added=[(0, params, [1, 2], output)], moved=[])
    generator = torch.Generator().manual_seed(seed)
    special = harmony.special
    ends = torch.tensor([special.end, special.return_, special.call])
    last = None
    for _ in range(max_steps):
        if last is not None:
            output.append(-1 if async_scheduling else last)
        processor.update_state(update)
        update = None
        if output and output[-1] == -1:
            output[-1] = last
        logits = torch.randn(1, VOCAB, generator=generator) * 3
        logits[0, ends] += 10
        last = int(processor.apply(logits)[0].argmax())
        if last in (special.return_, special.call):
            output.append(last)
            break
    return output


@pytest.mark.parametrize("async_scheduling", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_the_processor_follows_vllms_batch_protocol(harmony, seed, async_scheduling):
    """update_state / apply as the model runner calls them, with and without async scheduling
    (vLLM's default on GPUs, where the token in flight is a placeholder at update_state)."""
    tokens = simulate_engine(harmony, Constraint(final=_grammar(WEATHER)), seed, async_scheduling)
    events, _ = decode(harmony, tokens)
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    jsonschema.validate(json.loads(content), WEATHER)
    assert tokens[-1] == harmony.special.return_
