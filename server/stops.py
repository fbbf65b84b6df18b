"""Stop strings over visible content, streamed: text that may begin a stop string is held back."""

from __future__ import annotations

from server.events import ContentDelta, Event


class StopMatcher:
    __slots__ = ("_stops", "_held")

    def __init__(self, stops: list[str]) -> None:
        self._stops = stops
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop string was reached)."""
        buffer = self._held + text
        # the stop string that completes first (as if fed one character at a time), so the cut
        # does not depend on how the text was split; at a tie the longer one (it starts earlier)
        hits = [(i + len(s), i) for s in self._stops if (i := buffer.find(s)) >= 0]
        if hits:
            self._held = ""
            return buffer[: min(hits)[1]], True
        keep = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buffer)), keep, -1):
                if buffer.endswith(stop[:k]):
                    keep = k
                    break
        self._held = buffer[len(buffer) - keep:] if keep else ""
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def apply_stop(stopper: StopMatcher, events: list[Event], choice: int) -> bool:
    """Run content deltas through the stop matcher in place; True if a stop string was hit.

    Feed every event exactly once, in order (the matcher holds state between calls): pass only
    events not fed before, never a list that still holds earlier, already matched ones.
    Held-back text is released when a non-content event (reasoning, a tool call) follows;
    after a hit, nothing of ``events`` past the stop string is kept.
    """
    out: list[Event] = []
    hit = False
    for event in events:
        if isinstance(event, ContentDelta):
            text, hit = stopper.feed(event.text)
            if text:
                out.append(ContentDelta(choice, text))
            if hit:
                break
        else:
            held = stopper.flush()
            if held:
                out.append(ContentDelta(choice, held))
            out.append(event)
    events[:] = out
    return hit
