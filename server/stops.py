"""Stop strings over visible content, streamed: text that may begin a stop string is held back."""

from __future__ import annotations

from dataclasses import dataclass

from server.events import ContentDelta, Event


class StopMatcher:
    __slots__ = ("_stops", "_held", "_held_logprobs", "held_in")

    def __init__(self, stops: list[str]) -> None:
        self._stops = stops
        self._held = ""
        self._held_logprobs: list = []  # the held text's tokens, with logprobs
        self.held_in: ContentDelta | None = None  # the last delta fed: its item holds _held

    def feed(self, text: str) -> tuple[str, str | None]:
        """Return (text safe to emit, the stop string reached or None)."""
        buffer = self._held + text
        # the stop string that completes first (as if fed one character at a time), so the cut
        # does not depend on how the text was split; at a tie the longer one (it starts earlier)
        hits = [(i + len(s), i, s) for s in self._stops if (i := buffer.find(s)) >= 0]
        if hits:
            self._held = ""
            _, start, stop = min(hits)
            return buffer[:start], stop
        keep = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buffer)), keep, -1):
                if buffer.endswith(stop[:k]):
                    keep = k
                    break
        self._held = buffer[len(buffer) - keep:] if keep else ""
        return buffer[: len(buffer) - keep], None

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def feed_logprobs(self, text: str, logprobs: tuple) -> tuple[str, str | None, tuple]:
        """``feed`` for text that carries token logprobs (their texts concatenate to it):
        a token is held back whole while any of its text is, and cut at a stop string."""
        buffer, entries = self._held + text, [*self._held_logprobs, *logprobs]
        emitted, stop = self.feed(text)
        out, end = [], 0
        for k, entry in enumerate(entries):
            if end + len(entry[0]) <= len(emitted):
                out.append(entry)
                end += len(entry[0])
                continue
            if stop is not None:  # the stop string starts inside this token: keep its part
                if len(emitted) > end:
                    out.append((emitted[end:], *entry[1:]))
                entries = []
            else:  # hold this token whole, and the text from its start
                self._held, emitted, entries = buffer[end:], buffer[:end], entries[k:]
            break
        else:
            entries = []
        self._held_logprobs = entries
        return emitted, stop, tuple(out)

    def flush_logprobs(self) -> tuple:
        held, self._held_logprobs = self._held_logprobs, []
        return tuple(held)


@dataclass(slots=True, frozen=True)
class StopHit:
    stop: str  # the stop string that matched
    item: int  # the message item it matched in (stop strings match visible content only)


def apply_stop(stopper: StopMatcher, events: list[Event]) -> StopHit | None:
    """Run content deltas through the stop matcher in place; say where a stop string hit.

    Feed every event exactly once, in order (the matcher holds state between calls): pass only
    events not fed before, never a list that still holds earlier, already matched ones.
    Held-back text is released before any other event (the end of its item included), so a
    stop string never spans two items; after a hit, nothing of ``events`` past it is kept.
    """
    out: list[Event] = []
    hit = None
    for event in events:
        if isinstance(event, ContentDelta):
            if event.logprobs is None:
                text, stop = stopper.feed(event.text)
                logprobs = None
            else:
                text, stop, logprobs = stopper.feed_logprobs(event.text, event.logprobs)
            stopper.held_in = event
            if text or logprobs:
                out.append(ContentDelta(event.choice, event.item, text, logprobs))
            if stop is not None:
                hit = StopHit(stop, event.item)
                break
        else:
            held = stopper.flush()
            logprobs = stopper.flush_logprobs() or None
            if held or logprobs:
                out.append(ContentDelta(stopper.held_in.choice, stopper.held_in.item, held,
                                        logprobs))
            out.append(event)
    events[:] = out
    return hit
