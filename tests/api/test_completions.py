"""Raw Completions through the official openai SDK over the scripted engine: no Harmony on the
way in or out, stream == non-stream at chunk sizes 1, 2, 3 and 7, batches, echo, errors."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL
from tests.corpus import COMPLETIONS

HARMONY_PROMPT = "<|start|>user<|message|>hi<|end|><|start|>assistant"


def _fold(chunks) -> tuple[dict[int, tuple[str, str]], object]:
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    return {i: (texts[i], finishes.get(i)) for i in texts}, usage


def _both(client, **kwargs):
    created = client.completions.create(model=MODEL, **kwargs)
    chunks = list(client.completions.create(model=MODEL, stream=True,
                                            stream_options={"include_usage": True}, **kwargs))
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    return created, *_fold(chunks)


@pytest.mark.parametrize("name", sorted(COMPLETIONS))
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7], ids=lambda k: f"chunk{k}")
def test_stream_equals_create_and_text_is_raw(serve, harmony, name, chunk_size):
    server = serve([COMPLETIONS[name]], chunk_size=chunk_size)
    created, streamed, usage = _both(server.client(), prompt=HARMONY_PROMPT, max_tokens=500)
    [choice] = created.choices
    assert streamed == {0: (choice.text, choice.finish_reason)}
    assert usage == created.usage
    # the raw continuation, Harmony's tokens visible, up to (not including) the stop token
    expected = COMPLETIONS[name]
    for stop in ("<|return|>", "<|call|>"):
        expected = expected.split(stop)[0]
    assert choice.text == expected and choice.finish_reason == "stop"
    assert created.usage.prompt_tokens == len(harmony.encode_completion(HARMONY_PROMPT))


def test_a_spelled_special_token_is_that_token(serve, harmony):
    server = serve()
    server.client().completions.create(model=MODEL, prompt=HARMONY_PROMPT)
    prompt = server.engine.calls[-1].prompt_token_ids
    assert prompt[0] == harmony.special.start and prompt[-1] == harmony.special.assistant


def test_token_prompts_batches_n_and_echo(serve, harmony):
    server = serve([COMPLETIONS["final_only"]], chunk_size=2)
    client = server.client()
    ids = harmony.encode_completion(HARMONY_PROMPT)
    created, streamed, usage = _both(client, prompt=[ids, [1, 2, 3]], n=2, max_tokens=4,
                                     echo=True, seed=7)
    assert [c.index for c in created.choices] == [0, 1, 2, 3]
    calls = server.engine.calls[-4:]
    assert [c.prompt_token_ids for c in calls] == [ids, ids, [1, 2, 3], [1, 2, 3]]
    assert [c.options.seed for c in calls] == [7, 8, 9, 10]
    answer = harmony.decode_text(harmony.encode_completion(COMPLETIONS["final_only"])[:4])
    assert created.choices[0].text == HARMONY_PROMPT + answer
    assert created.choices[2].text == harmony.decode_text([1, 2, 3]) + answer
    assert {c.finish_reason for c in created.choices} == {"length"}
    assert streamed == {c.index: (c.text, c.finish_reason) for c in created.choices}
    assert created.usage.prompt_tokens == len(ids) + 3  # each prompt once, not once per choice
    assert created.usage.completion_tokens == 16 and usage == created.usage


def test_stop_strings_and_max_tokens(serve):
    server = serve([COMPLETIONS["plain"]])
    client = server.client()
    created, streamed, _ = _both(client, prompt="x", stop=["<|end|>"], max_tokens=100)
    assert created.choices[0].text == "<|channel|>analysis<|message|>User says hi. Reply briefly."
    assert streamed[0] == (created.choices[0].text, "stop")
    short = client.completions.create(model=MODEL, prompt="x")  # OpenAI's default: 16 tokens
    assert short.usage.completion_tokens == 16 and short.choices[0].finish_reason == "length"


@pytest.mark.parametrize(("change", "param"), [
    ({"suffix": "end"}, "suffix"),
    ({"logprobs": 6}, "logprobs"),  # at most 5, as OpenAI
    ({"prompt": []}, "prompt"),
    ({"prompt": [[1, 2], []]}, "prompt"),
    ({"prompt": [201088]}, "prompt"),
    ({"prompt": [-1]}, "prompt"),
    ({"prompt": [[1]] * 5, "n": 2}, "prompt"),
    ({"best_of": 3}, "best_of"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"model": "nope"}, "model"),
    ({"logit_bias": {"999999": 1}}, "logit_bias"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
])
def test_bad_requests_are_400s_in_the_openai_envelope(serve, change, param):
    server = serve()
    with pytest.raises(openai.APIStatusError) as raised:
        server.client().completions.create(**{"model": MODEL, "prompt": "hi", **change})
    assert 400 <= raised.value.status_code < 500
    assert raised.value.body["param"] == param
    assert server.engine.calls == []
