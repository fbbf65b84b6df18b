"""The tiny model's training data: what it holds out, and the copy structure of the trained rows."""

from __future__ import annotations

import json
import re

import pytest

from training import train

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def examples():
    return train.make_examples(6000)


def test_examples_are_deterministic(examples):
    assert train.make_examples(200) == examples[:200]
    assert train.make_examples(200, seed=train.SEED + 1) != examples[:200]


def test_every_kind_and_effort_occurs(examples):
    assert {e.kind for e in examples} == set(train.KIND_WEIGHTS)
    assert {e.effort for e in examples} == {"low", "medium", "high"}


def test_heldout_additions_never_occur(examples):
    heldout = set(train.HELDOUT_ADD_PAIRS)
    assert heldout
    pattern = re.compile(r"\b(\d+) (?:\+|plus|and) (\d+)\b")
    seen = set()
    for e in examples:
        for text in (json.dumps(e.request), e.completion):
            seen |= {(int(a), int(b)) for a, b in pattern.findall(text)}
    assert seen & set(train.TRAIN_ADD_PAIRS)
    assert not seen & heldout


def test_heldout_sums_are_made_of_trained_steps(examples):
    """Each held-out sum is worked out as "a + b = T + x + y = T + s = n": the same ones digits
    ("+ x + y =") and the same last step ("T + s = n") occur in the reasoning of trained sums."""
    reasoning = "\n".join(e.completion for e in examples if e.kind == "add")
    for a, b in train.HELDOUT_ADD_PAIRS:
        steps = train._add_steps(a, b).split(" = ")
        assert len(steps) == 4, steps  # every held-out pair has a two-digit operand
        ones = steps[1].split(" + ", 1)[1]
        assert f" + {ones} = " in reasoning, (a, b)
        assert f" {steps[2]} = {steps[3]}." in reasoning, (a, b)


def test_heldout_cities_never_share_a_prompt_with_a_weather_question(examples):
    weather = [e for e in examples if e.kind in ("weather", "weather_result")]
    capital = [e for e in examples if e.kind == "capital"]
    for city in train.HELDOUT_WEATHER_CITIES:
        assert city not in train.WEATHER_CITIES
        assert not any(city in json.dumps(e.request) or city in e.completion for e in weather)
        assert any(city in e.completion for e in capital)  # the model knows the word


def test_heldout_cities_are_copyable_but_their_quoted_form_is_never_seen(examples):
    pairs = dict(train.copy_pairs())
    data_tokens = {t for prompt, completion in train.tokenize(examples) for t in prompt + completion}
    from server.harmony.encoding import load_harmony

    harmony = load_harmony()
    for city in train.HELDOUT_WEATHER_CITIES:
        [spaced] = harmony.encode_completion(" " + city)
        [bare] = harmony.encode_completion(city)
        assert pairs[spaced] == bare
        assert spaced in data_tokens
        assert bare not in data_tokens  # the call's "City" is never a training target


def test_committed_place_rows_share_one_structure():
    """Per place only its fixed vector differs: out - in, and bare - spaced, are one vector each."""
    from server.models.artifact import read_artifact

    tensors, _ = read_artifact()
    embed = tensors["model.embed_tokens.weight@rows"].float()
    output = tensors["lm_head.weight@rows"].float()
    index = {t: i for i, t in enumerate(tensors["used_ids"].tolist())}
    pairs = [(index[spaced], index[bare]) for spaced, bare in train.copy_pairs()]
    assert len(pairs) > train.INVENTED_PLACES

    def same_vector(differences):  # up to the bf16 rounding of the rows
        assert differences.abs().max() > 0.01
        assert torch.allclose(differences, differences.mean(0).expand_as(differences), atol=0.03)

    for places in ([spaced for spaced, _ in pairs], [bare for _, bare in pairs]):
        same_vector(output[places] - embed[places])
    same_vector(torch.stack([embed[bare] - embed[spaced] for spaced, bare in pairs]))
    same_vector(torch.stack([output[bare] - output[spaced] for spaced, bare in pairs]))
