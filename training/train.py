"""Train the tiny gpt-oss ("gpt-oss-tiny") to answer a few kinds of prompts in well-formed Harmony.

``python -m training.train --out server/models/artifacts/gpt-oss-tiny.safetensors.gz``

The data is rendered by the server's own Harmony renderer (``server.harmony.render``) from
pydantic request models, so the model learns exactly the prompts the server sends to the engine.
Completions are raw Harmony text (special tokens written literally). Kinds:

- ``add``: "What is 12 plus 9?" -> analysis reasoning that works the sum out in steps
  ("12 + 9 = 10 + 2 + 9 = 10 + 11 = 21"), then the final answer "21";
- ``capital``: "What is the capital of France?" -> analysis, then "The capital of France is Paris.";
- ``weather``: the same with a declared ``get_weather`` function tool -> analysis, then
  ``<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>``;
- ``weather_result``: the continuation after the tool result -> analysis, then
  "It is 18°C and sunny in Paris.";
- ``chat``: greetings answered with analysis then a fixed final answer.

The system message's reasoning effort (low/medium/high) and date vary, as do phrasings, the
presence of a system prompt, tool descriptions, a previous turn and whether the client echoes the
reasoning of the tool call back. Addition pairs (``HELDOUT_ADD_PAIRS``, each with a two-digit
operand) are held out for the end-to-end tests; so are the cities of ``HELDOUT_WEATHER_CITIES``,
which only the capital kind shows: the weather kinds use other real places and 400 made-up ones
(``invented_places``).

Training uses an exact restricted-vocabulary loss: every output row of a token that never occurs in
the data stays zero, so those logits are 0 and the full 201,088-way cross-entropy equals the
cross-entropy over the used tokens plus one extra logit ``log(V - |used|)``. The model is trained in
compact form (vocabulary = used tokens) and stored as such (``server.models.artifact``); the full
model directory is expanded from it at load time.

Adding in steps. A model this small that maps a pair straight to its sum memorises a table, and
the held-out pairs are holes in it. Worked in steps, every held-out sum is made of facts the
training shows many times: the tens and ones of each operand, the single-digit sums (all of them
trained), and "tens + ones" ("10 + 11 = 21").

Copying places. A weather call must repeat the place of the question, and a model this small
memorises a few dozen places instead of learning to copy them, so it cannot call the tool for a
place it never saw there. What makes it copy: hundreds of invented places, and place rows that
hold nothing per place but a random vector (see ``train``), so the only way to get a place right
is to carry its vector from the question to the output. An invented place gets a new random vector
at every step, so not even a few hundred vectors can be memorised: the copy has to work for any
vector, and then it works for the held-out cities too. The JSON
arguments write the place without its leading space (``" Madrid"`` in the question, ``"Madrid"`` in
``{"city": "Madrid"}``, two different tokens); ``copy_pairs`` links the two.

Deterministic: fixed seeds, ``torch.use_deterministic_algorithms(True)`` and a fixed thread count.
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SEED = 1234
THREADS = 1  # one thread: identical results everywhere, and no slower on 2 busy cores

# --- the data's vocabulary of facts -------------------------------------------------------------

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "Austria": "Vienna", "Poland": "Warsaw", "Greece": "Athens",
    "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen",
    "Ireland": "Dublin", "Belgium": "Brussels", "the Netherlands": "Amsterdam",
    "Hungary": "Budapest", "the Czech Republic": "Prague", "Japan": "Tokyo",
    "China": "Beijing", "South Korea": "Seoul", "Thailand": "Bangkok", "Egypt": "Cairo",
    "Kenya": "Nairobi", "Peru": "Lima", "Chile": "Santiago", "Argentina": "Buenos Aires",
    "Russia": "Moscow", "Turkey": "Ankara", "Canada": "Ottawa", "Mexico": "Mexico City",
    "the United Kingdom": "London", "Australia": "Canberra", "India": "New Delhi",
    "Cuba": "Havana", "Iceland": "Reykjavik", "Switzerland": "Bern",
    "the United States": "Washington", "Singapore": "Singapore",
}
# Weather places. The JSON arguments spell a place without the leading space it has in the question
# (" Madrid" -> "Madrid"); see ``copy_pairs``. SINGLE_TOKEN_PLACES are one token in both forms, so
# a place can be copied from the question into the call whether or not it was seen in the weather
# kinds; HELDOUT_WEATHER_CITIES never occur in the weather kinds (only in the capital kind) and
# are what the end-to-end tests ask for.
SINGLE_TOKEN_PLACES = [
    "Houston", "Dallas", "Austin", "Phoenix", "Denver", "Boston", "Seattle", "Chicago", "Atlanta",
    "Miami", "Detroit", "Sydney", "Toronto", "Barcelona", "Mumbai", "Shanghai", "Manchester",
    "Liverpool", "Oxford", "Philadelphia", "Dubai", "Hollywood", "Texas", "California", "Florida",
    "Ohio", "Delhi",
]
MULTI_WORD_PLACES = ["San Francisco", "New York", "Los Angeles", "Las Vegas", "Hong Kong"]
HELDOUT_WEATHER_CITIES = ["Madrid", "Rome", "Amsterdam", "Bern", "Washington", "Singapore"]
REAL_PLACES = [*CAPITALS.values(), *SINGLE_TOKEN_PLACES, *MULTI_WORD_PLACES]
WEATHER_CITIES = [c for c in REAL_PLACES if c not in HELDOUT_WEATHER_CITIES]
# Besides the real places, the weather kinds use made-up ones: capitalised words that are one token
# in both forms, drawn from the vocabulary. A few dozen real places can be memorised; hundreds of
# names seen a handful of times each can only be copied, and copying is what makes a place the
# weather kinds never showed work.
INVENTED_PLACES = 400
INVENTED_SHARE = 0.5  # of the weather examples
PLACE_SCALE = 0.2  # the norm of every place's own vector is PLACE_SCALE * sqrt(hidden size)
ORDINARY_TOKENS = 199_998  # o200k_harmony ids below this are not special
CONDITIONS = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy"]
TEMPERATURES = list(range(-5, 36))

ADD_MAX = 30  # operands 1..ADD_MAX


def _heldout_pair(a: int, b: int) -> bool:
    """About one in eleven of the sums with a two-digit operand.

    Single-digit sums are the facts the worked reasoning of the others is built from, so they are
    all trained; so is every sum whose first operand is a multiple of ten, which the reasoning of
    other sums states as a step ("12 + 7 = 10 + 2 + 7 = 10 + 9 = 19")."""
    return max(a, b) >= 10 and a % 10 != 0 and (a * 7 + b * 13) % 11 == 0


HELDOUT_ADD_PAIRS = [(a, b) for a in range(1, ADD_MAX + 1) for b in range(1, ADD_MAX + 1)
                     if _heldout_pair(a, b)]
TRAIN_ADD_PAIRS = [(a, b) for a in range(1, ADD_MAX + 1) for b in range(1, ADD_MAX + 1)
                   if not _heldout_pair(a, b)]

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER_DESCRIPTIONS = [
    "Get the current weather for a city.",
    "Get the current weather in a given city.",
    "Look up the weather.",
    "Returns the current temperature and conditions for a city.",
    "",
]
SYSTEM_PROMPTS = [None, None, "You are a helpful assistant.", "You are a concise assistant.",
                  "Answer briefly."]
EFFORTS = ["low", "medium", "high"]

ADD_QUESTIONS = ["What is {a} plus {b}?", "What is {a} + {b}?", "How much is {a} plus {b}?",
                 "Add {a} and {b}.", "Compute {a} + {b}.", "what is {a} plus {b}",
                 "Please add {a} and {b}.", "What's {a} plus {b}?"]
CAPITAL_QUESTIONS = ["What is the capital of {c}?", "What's the capital of {c}?",
                     "Which city is the capital of {c}?", "Name the capital of {c}.",
                     "capital of {c}?", "Tell me the capital of {c}."]
WEATHER_QUESTIONS = ["What is the weather in {c}?", "What's the weather in {c}?",
                     "What is the weather like in {c} today?", "How is the weather in {c}?",
                     "Is it sunny in {c}?", "weather in {c}?", "Tell me the weather in {c}.",
                     "Check the weather in {c} for me."]
CHATS = [
    ("Hello!", "The user greets me. I should greet back and offer help.",
     "Hello! How can I help you today?"),
    ("Hi", "The user greets me. I should greet back and offer help.",
     "Hello! How can I help you today?"),
    ("Hey there", "The user greets me. I should greet back and offer help.",
     "Hello! How can I help you today?"),
    ("Who are you?", "The user asks who I am. I am a small assistant.",
     "I am a tiny assistant. I can add numbers, name capitals and check the weather."),
    ("What can you do?", "The user asks what I can do.",
     "I am a tiny assistant. I can add numbers, name capitals and check the weather."),
    ("Thanks!", "The user thanks me. I should reply politely.", "You are welcome!"),
    ("Thank you", "The user thanks me. I should reply politely.", "You are welcome!"),
]


# --- expected outputs (shared with the end-to-end tests) ----------------------------------------

def add_answer(a: int, b: int) -> str:
    return str(a + b)


def capital_answer(country: str) -> str:
    return f"The capital of {country} is {CAPITALS[country]}."


def weather_arguments(city: str) -> str:
    return '{"city": "' + city + '"}'


def weather_result(temperature: int, condition: str) -> str:
    return '{"temperature": ' + str(temperature) + ', "condition": "' + condition + '"}'


def weather_answer(city: str, temperature: int, condition: str) -> str:
    return f"It is {temperature}°C and {condition} in {city}."


def _add_steps(a: int, b: int) -> str:
    """The tens together, then the ones: "12 + 9 = 10 + 2 + 9 = 10 + 11 = 21"."""
    tens = 10 * (a // 10 + b // 10)
    if tens == 0:
        return f"{a} + {b} = {a + b}"
    ones = a % 10 + b % 10
    return f"{a} + {b} = {tens} + {a % 10} + {b % 10} = {tens} + {ones} = {a + b}"


def _add_reasoning(a: int, b: int, effort: str) -> str:
    steps = _add_steps(a, b)
    if effort == "low":
        return f"{steps}."
    if effort == "medium":
        return f"The user asks for {a} plus {b}. {steps}."
    return f"The user wants the sum of {a} and {b}. Adding them: {steps}. The answer is {a + b}."


def _capital_reasoning(country: str, effort: str) -> str:
    city = CAPITALS[country]
    if effort == "low":
        return f"Capital of {country}: {city}."
    return f"The user asks for the capital of {country}. The capital of {country} is {city}."


def _weather_reasoning(city: str, effort: str) -> str:
    if effort == "low":
        return f"Call get_weather for {city}."
    return f"The user asks about the weather in {city}. I should call get_weather with {city}."


def _result_reasoning(city: str, temperature: int, condition: str, effort: str) -> str:
    if effort == "low":
        return f"{temperature}°C, {condition}."
    return f"The tool says it is {temperature}°C and {condition} in {city}. I can answer now."


def harmony_completion(reasoning: str, final: str | None = None,
                       call: tuple[str, str] | None = None) -> str:
    """Raw Harmony text the model writes after ``<|start|>assistant``."""
    text = f"<|channel|>analysis<|message|>{reasoning}<|end|><|start|>assistant"
    if call is not None:
        name, arguments = call
        return text + (f"<|channel|>commentary to=functions.{name} <|constrain|>json"
                       f"<|message|>{arguments}<|call|>")
    return text + f"<|channel|>final<|message|>{final}<|return|>"


# --- data generation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    kind: str
    request: dict  # the chat completion request body (messages, tools)
    effort: str
    date: str
    completion: str  # raw Harmony text


def weather_tool(description: str = "Get the current weather for a city.") -> dict:
    function: dict = {"name": "get_weather", "parameters": WEATHER_PARAMETERS}
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


def _date(rng: random.Random) -> str:
    return f"{rng.randint(2024, 2027)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _head(rng: random.Random) -> list[dict]:
    system = rng.choice(SYSTEM_PROMPTS)
    return [] if system is None else [{"role": "system", "content": system}]


def _previous_turn(rng: random.Random) -> list[dict]:
    """An earlier exchange (its reasoning is dropped by the renderer), sometimes."""
    if rng.random() > 0.15:
        return []
    a, b = rng.choice(TRAIN_ADD_PAIRS)
    # not a held-out city: those must never share a prompt with a weather question
    country = rng.choice(sorted(c for c in CAPITALS if CAPITALS[c] not in HELDOUT_WEATHER_CITIES))
    question, answer = rng.choice([
        (rng.choice(ADD_QUESTIONS).format(a=a, b=b), add_answer(a, b)),
        (rng.choice(CAPITAL_QUESTIONS).format(c=country), capital_answer(country)),
        (CHATS[0][0], CHATS[0][2]),
    ])
    return [{"role": "user", "content": question},
            {"role": "assistant", "content": answer}]


def make_example(rng: random.Random, kind: str) -> Example:
    effort = rng.choice(EFFORTS)
    date = _date(rng)
    messages = _head(rng) + _previous_turn(rng)
    tools: list[dict] = []
    if kind in ("add", "capital", "chat") and rng.random() < 0.3:
        tools = [weather_tool(rng.choice(WEATHER_DESCRIPTIONS))]
    if kind == "add":
        a, b = rng.choice(TRAIN_ADD_PAIRS)
        messages.append({"role": "user", "content": rng.choice(ADD_QUESTIONS).format(a=a, b=b)})
        completion = harmony_completion(_add_reasoning(a, b, effort), add_answer(a, b))
    elif kind == "capital":
        country = rng.choice(sorted(CAPITALS))
        messages.append({"role": "user",
                         "content": rng.choice(CAPITAL_QUESTIONS).format(c=country)})
        completion = harmony_completion(_capital_reasoning(country, effort),
                                        capital_answer(country))
    elif kind == "chat":
        question, reasoning, answer = rng.choice(CHATS)
        messages.append({"role": "user", "content": question})
        completion = harmony_completion(reasoning, answer)
    elif kind in ("weather", "weather_result"):
        places = invented_places() if rng.random() < INVENTED_SHARE else WEATHER_CITIES
        city = rng.choice(places)
        tools = [weather_tool(rng.choice(WEATHER_DESCRIPTIONS))]
        messages.append({"role": "user",
                         "content": rng.choice(WEATHER_QUESTIONS).format(c=city)})
        if kind == "weather":
            completion = harmony_completion(_weather_reasoning(city, effort),
                                            call=("get_weather", weather_arguments(city)))
        else:
            temperature, condition = rng.choice(TEMPERATURES), rng.choice(CONDITIONS)
            call_id = f"call_{rng.getrandbits(48):012x}"
            assistant: dict = {"role": "assistant", "content": None, "tool_calls": [{
                "id": call_id, "type": "function",
                "function": {"name": "get_weather", "arguments": weather_arguments(city)}}]}
            if rng.random() < 0.5:  # some clients echo the reasoning back, some do not
                assistant["reasoning_content"] = _weather_reasoning(city, effort)
            messages += [assistant, {"role": "tool", "tool_call_id": call_id,
                                     "content": weather_result(temperature, condition)}]
            completion = harmony_completion(
                _result_reasoning(city, temperature, condition, effort),
                weather_answer(city, temperature, condition))
    else:
        raise ValueError(kind)
    request = {"model": "gpt-oss-tiny", "messages": messages}
    if tools:
        request["tools"] = tools
    return Example(kind, request, effort, date, completion)


KIND_WEIGHTS = {"add": 0.45, "capital": 0.1, "weather": 0.15, "weather_result": 0.2,
                "chat": 0.1}


def make_examples(count: int, seed: int = SEED) -> list[Example]:
    rng = random.Random(seed)
    kinds, weights = zip(*KIND_WEIGHTS.items(), strict=True)
    return [make_example(rng, rng.choices(kinds, weights)[0]) for _ in range(count)]


def tokenize(examples: list[Example]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids) of each example, rendered exactly as the server renders."""
    from server.config import Settings
    from server.harmony.encoding import load_harmony
    from server.harmony.render import render_conversation
    from server.schemas.chat_request import CompletionCreateParams
    from server.surfaces.chat import conversation

    harmony = load_harmony()
    settings = Settings(engine="scripted", script="unused")
    out = []
    for ex in examples:
        params = CompletionCreateParams.model_validate(ex.request)
        chat = conversation(params, settings)
        chat.effort = ex.effort
        prompt = render_conversation(harmony, chat, ex.date)
        out.append((list(prompt), harmony.encode_completion(ex.completion)))
    return out


@functools.cache
def invented_places(count: int = INVENTED_PLACES) -> list[str]:
    """``count`` capitalised words, one token after a space and one token after a quote."""
    from server.harmony.encoding import load_harmony

    harmony = load_harmony()
    word = re.compile(r"^ [A-Z][a-z]{3,9}$")
    known = set(" ".join([*CAPITALS, *REAL_PLACES, *ADD_QUESTIONS, *CAPITAL_QUESTIONS, *WEATHER_QUESTIONS,
                          *(text for chat in CHATS for text in chat)]).split())
    names = []
    for token in range(ORDINARY_TOKENS):
        try:
            text = harmony.decode_text([token])
        except Exception:  # part of a multi-byte character
            continue
        if (word.match(text) and text[1:] not in known
                and len(harmony.encode_completion(text[1:])) == 1):
            names.append(text[1:])
    return random.Random(SEED).sample(names, count)


def copy_pairs() -> list[tuple[int, int]]:
    """(token after a space, the same word's token after a quote) for every place name.

    " Madrid" in the question is one token and "Madrid" in ``{"city": "Madrid"}`` another; for
    multi-word names only the first word differs (" New"/"New", then " York" both times). Training
    gives both tokens of a pair the same random vector, told apart by a "bare" shift shared by all
    pairs (see ``train``), so writing a place into the arguments is one generic operation, also for
    places the weather kinds never showed.
    """
    from server.harmony.encoding import load_harmony

    harmony = load_harmony()
    pairs = set()
    for name in REAL_PLACES + invented_places():
        spaced, bare = harmony.encode_completion(" " + name), harmony.encode_completion(name)
        if len(spaced) == len(bare) and spaced[1:] == bare[1:] and spaced[0] != bare[0]:
            pairs.add((spaced[0], bare[0]))
    return sorted(pairs)


# --- training -----------------------------------------------------------------------------------

def train(steps: int, batch: int, examples: int, lr: float, weight_decay: float,
          log_every: int = 50):
    """Train; returns (compact state dict, used token ids, config)."""
    import torch
    import torch.nn.functional as F
    from transformers import GptOssConfig, GptOssForCausalLM

    from server.harmony.encoding import load_harmony
    from server.models.tiny import tiny_config

    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)

    data = tokenize(make_examples(examples))
    pairs = copy_pairs()
    config = tiny_config()
    vocab = config["vocab_size"]
    used = sorted({t for p, c in data for t in p + c} | {t for pair in pairs for t in pair})
    index = {t: i for i, t in enumerate(used)}
    n_used = len(used)
    print(f"{len(data)} examples, {n_used} used token ids, "
          f"max length {max(len(p) + len(c) for p, c in data)}", flush=True)

    compact = dict(copy.deepcopy(config), vocab_size=n_used)  # GptOssConfig edits nested dicts
    compact.pop("torch_dtype", None)
    compact["pad_token_id"] = None  # no padding_idx row in the compact embedding
    model = GptOssForCausalLM(GptOssConfig(**compact))
    model.config._attn_implementation = "eager"
    model.set_experts_implementation("grouped_mm")  # the fastest on CPU
    model.train()

    # Place rows (both tokens of every copy pair, see ``copy_pairs``) are not free parameters: each is
    # a random vector of its own plus vectors shared by all places (one for the embedding, one for
    # the output, and a "bare" shift for each). A place's identity is then the same vector going in
    # and coming out, and nothing is learned per place, so the model cannot memorise places: it has
    # to learn to copy, which works as well for places the weather kinds never showed. Real places
    # keep one vector (the capital kind names them); invented places draw a new one every step.
    embed, output = model.model.embed_tokens.weight, model.lm_head.weight
    hidden_size = config["hidden_size"]
    source = torch.arange(n_used)
    is_place = torch.zeros(n_used, 1, dtype=torch.bool)
    is_bare = torch.zeros(n_used, 1)
    for spaced, bare in pairs:
        source[index[bare]] = index[spaced]
        is_place[index[bare]] = is_place[index[spaced]] = True
        is_bare[index[bare]] = 1.0

    def place_vectors(count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        vectors = torch.randn(count, hidden_size, generator=generator)
        return vectors * (PLACE_SCALE * math.sqrt(hidden_size)) / vectors.norm(dim=1, keepdim=True)

    identity = place_vectors(n_used)
    harmony = load_harmony()
    invented = torch.tensor(sorted(index[harmony.encode_completion(" " + name)[0]]
                                   for name in invented_places()))
    vector_gen = torch.Generator().manual_seed(SEED + 1)
    shared = torch.nn.Parameter(torch.zeros(4, hidden_size))  # embed, output, embed bare, output bare

    def tables(fresh: bool = False):
        """(embedding rows, output rows); ``fresh``: new vectors for the invented places."""
        vectors = identity
        if fresh:
            vectors = identity.clone()
            vectors[invented] = place_vectors(len(invented), vector_gen)
        place_in = vectors[source] + shared[0] + is_bare * shared[2]
        place_out = vectors[source] + shared[1] + is_bare * shared[3]
        return torch.where(is_place, place_in, embed), torch.where(is_place, place_out, output)

    # tensors: inputs, targets (-100 outside the completion)
    seqs, targets = [], []
    for prompt, completion in data:
        ids = [index[t] for t in prompt + completion]
        tgt = [-100] * len(ids)
        for i in range(len(prompt), len(ids)):
            tgt[i - 1] = ids[i]
        seqs.append(ids[:-1])
        targets.append(tgt[:-1])
    # the constant logit of the (vocab - n_used) unused tokens, all exactly 0: log(count) + 0
    unused_logit = math.log(vocab - n_used)

    # Weight decay on the vocabulary rows only: in the runs of the earlier recipe (sums answered
    # without steps) it helped the held-out additions, while on every weight it held back copying.
    rows = [embed, output]
    params = [shared, *model.parameters()]
    opt = torch.optim.AdamW([{"params": rows, "weight_decay": weight_decay},
                             {"params": [p for p in params if p is not embed and p is not output],
                              "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))
    warmup = min(50, steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup)
                                                        / max(1, steps - warmup))))

    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
    gen = torch.Generator().manual_seed(SEED)
    start = time.monotonic()
    running = 0.0
    for step in range(steps):
        # a batch of neighbours in length order: little padding (the prompt dominates the cost)
        first = int(torch.randint(len(order) - batch + 1, (1,), generator=gen))
        idx = order[first:first + batch]
        length = max(len(seqs[i]) for i in idx)
        x = torch.zeros(batch, length, dtype=torch.long)
        y = torch.full((batch, length), -100, dtype=torch.long)
        for row, i in enumerate(idx):
            x[row, :len(seqs[i])] = torch.tensor(seqs[i])
            y[row, :len(targets[i])] = torch.tensor(targets[i])
        embed_rows, output_rows = tables(fresh=True)
        # right padding: causal attention is enough
        hidden = model.model(inputs_embeds=F.embedding(x, embed_rows)).last_hidden_state
        mask = y != -100
        logits = hidden[mask] @ output_rows.T
        logits = torch.cat([logits, logits.new_full((logits.shape[0], 1), unused_logit)], 1)
        loss = F.cross_entropy(logits, y[mask])
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running += loss.item()
        if (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps} loss {running / log_every:.4f} "
                  f"{time.monotonic() - start:.0f}s", flush=True)
            running = 0.0
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        embed_rows, output_rows = tables()
    state["model.embed_tokens.weight"] = embed_rows.clone()
    state["lm_head.weight"] = output_rows.clone()
    return state, used, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train",
                                     description="Train the tiny gpt-oss (gpt-oss-tiny).")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "server" / "models"
                        / "artifacts" / "gpt-oss-tiny.safetensors.gz")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--examples", type=int, default=6000)
    parser.add_argument("--lr", type=float, default=8e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    args = parser.parse_args(argv)

    from server.models.artifact import write_artifact

    start = time.monotonic()
    state, used, config = train(args.steps, args.batch, args.examples, args.lr, args.weight_decay)
    digest = write_artifact(args.out, state, used, config)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 {digest}) "
          f"in {time.monotonic() - start:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
