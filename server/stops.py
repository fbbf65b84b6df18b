"""Stop strings over visible content, streamed: text that may begin a stop string is held back."""

from __future__ import annotations

from dataclasses import dataclass

from server.events import ContentDelta, Event


class StopMatcher:
    __slots__ = ("_stops", "_held", "held_in")

    def __init__(self, stops: list[str]) -> None:
        self._stops = stops
        self._held = ""
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
            text, stop = stopper.feed(event.text)
            stopper.held_in = event
            if text:
                out.append(ContentDelta(event.choice, event.item, text))
            if stop is not None:
                hit = StopHit(stop, event.item)
                break
        else:
            held = stopper.flush()
            if held:
                out.append(ContentDelta(stopper.held_in.choice, stopper.held_in.item, held))
            out.append(event)
    events[:] = out
    return hit
