"""Small pieces more than one surface needs: effort names, delta coalescing."""

from __future__ import annotations

from server.errors import InvalidRequestError
from server.events import ArgumentsDelta, ContentDelta, Event, ReasoningDelta

# What clients send -> what Harmony knows. Unknown-but-plausible names map to the nearest
# effort instead of failing (README "Reasoning effort").
EFFORT_ALIASES = {"minimal": "low", "none": "low", "low": "low", "medium": "medium",
                  "high": "high", "xhigh": "high", "max": "high"}


def resolve_effort(first: str | None, first_param: str, second: str | None, second_param: str,
                   default: str) -> str:
    """The reasoning effort from either of two request fields (the first wins), or default."""
    raw, param = (first, first_param) if first else (second, second_param)
    if not raw:
        return default
    effort = EFFORT_ALIASES.get(raw.lower())
    if effort is None:
        raise InvalidRequestError(f"unknown reasoning effort '{raw}'; use low, medium or high",
                                  param=param)
    return effort


_TEXT_DELTAS = (ContentDelta, ReasoningDelta, ArgumentsDelta)


def coalesce(batch: list[Event]) -> list[Event]:
    """Merge adjacent text deltas of the same kind, choice and item into one (fewer frames)."""
    if len(batch) < 2:
        return batch
    merged: list[Event] = []
    last = None
    for event in batch:
        kind = type(event)
        if (kind is type(last) and kind in _TEXT_DELTAS and event.choice == last.choice
                and event.item == last.item):
            if kind is ContentDelta and (last.logprobs or event.logprobs):
                last = merged[-1] = ContentDelta(event.choice, event.item, last.text + event.text,
                                                 (*(last.logprobs or ()),
                                                  *(event.logprobs or ())))
            else:
                last = merged[-1] = kind(event.choice, event.item, last.text + event.text)
        else:
            merged.append(event)
            last = event
    return merged


def openai_logprobs(entries) -> list[dict]:
    """Token logprobs (server.events.TokenLogprob) in OpenAI's shape: ``token`` (its text in
    the content), ``logprob``, ``bytes`` and ``top_logprobs`` (alternatives' text, possibly a
    partial character, shown with replacement characters; their bytes are exact)."""
    return [{"token": text, "logprob": value, "bytes": list(raw),
             "top_logprobs": [{"token": alt.decode("utf-8", "replace"), "logprob": alt_value,
                               "bytes": list(alt)} for alt, alt_value in top]}
            for text, raw, value, top in entries]
