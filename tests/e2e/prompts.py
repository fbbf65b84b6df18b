"""The questions gpt-oss-tiny was trained to answer, phrased as its training phrased them, and
the answers it gives to held-out ones: shared by the e2e tests of every surface."""

from __future__ import annotations

from training.train import HELDOUT_ADD_PAIRS, add_answer, capital_answer

ADDITION = HELDOUT_ADD_PAIRS[0]


def add_question(a: int, b: int) -> str:
    return f"What is {a} plus {b}?"


def capital_question(country: str) -> str:
    return f"What is the capital of {country}?"


def weather_question(city: str) -> str:
    return f"What is the weather in {city}?"


ANSWER_CASES = {
    "addition": (add_question(*ADDITION), add_answer(*ADDITION)),
    "capital": (capital_question("Japan"), capital_answer("Japan")),
}
