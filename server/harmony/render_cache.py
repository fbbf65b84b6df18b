"""Incremental rendering: prompts assembled from cached Harmony renders of their pieces.

An agent re-sends its whole conversation every turn and adds a message or two. Rendering that
again costs tens of milliseconds of CPU (one Harmony call per message, holding the GIL), nearly
all of it repeated. ``RenderCache`` keeps the tokens of the pieces a prompt is made of:

- the head (the system and developer messages), keyed by what decides it: the effort, the date,
  the instructions and the tools (their name, description and schema, key order included);
- each history message, keyed by the message itself (author, channel, recipient, text).

A prompt is the head, then each message kept by Harmony's rule (``render._kept``: reasoning of
turns that ended in a final answer is dropped), then ``<|start|>assistant``: exactly what
``render.render_conversation`` renders, since that too renders each message on its own. The drop
rule is applied before the cache is asked, so a new final answer, which changes which earlier
messages render, just stops asking for the dropped ones. That is why the pieces are messages and
not token prefixes: a prompt's tokens are not always a prefix of the next turn's prompt. Equality
with the full render is a property test (tests/unit/test_render_cache.py).

Bounded by bytes (``--render-cache-bytes``): tokens are stored 4 bytes each, plus the text the key
holds and a fixed overhead per entry; the least recently used entries are evicted.

Tenants. A cached piece is the very tokens a render would produce, so no content crosses from one
request to another; what a hit reveals is time (it is faster). A client could learn that someone
sent exactly message M before (or uses exactly tools T) by timing its own requests that contain
it: a hit saves microseconds to a few milliseconds of CPU. That is the side channel of vLLM's
prefix cache too (where a hit saves prefill, a far larger difference), and the same setting
closes both: with ``--cache-salt-per-key`` every entry is keyed by a digest of the API key (the
owner), so keys share nothing; a caller that cannot name the key then gets no caching at all
(``owner=None``). By default one namespace is shared, like vLLM's prefix cache, so the head of an
agent framework (its instructions and tools) is rendered once for all its users. Eviction is
shared by every owner: one key's traffic can evict another's entries, which costs a re-render and
tells the evictor at most how much others send, not what.

Stalls. openai_harmony holds the GIL while it renders (measured: a thread spinning beside a
render makes no progress for the whole call), so a worker thread would not keep the event loop
running. ``render_async`` renders the same pieces but hands the loop back whenever it has been
rendering for more than ``slice_s`` since it last did, between messages; a single message's
render cannot be split.
"""

from __future__ import annotations

import array
import asyncio
import marshal
import sys
import time
from collections import OrderedDict
from collections.abc import Generator

from server.harmony.encoding import Harmony
from server.harmony.render import _kept, _render_message, conversation_date, render_head
from server.plan import Conversation, Message

ENTRY_OVERHEAD = 160  # bytes per entry besides its tokens and key text: dict slot, key, array
DEFAULT_SLICE_S = 0.001  # render_async hands the event loop back after this much rendering


class RenderCache:
    """A byte-bounded LRU of rendered heads and messages; ``render`` equals
    ``render.render_conversation`` for every conversation."""

    def __init__(self, harmony: Harmony, max_bytes: int) -> None:
        self.harmony = harmony
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, tuple[array.array, int]] = OrderedDict()
        self._tail = (harmony.special.start, harmony.special.assistant)
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def render(self, conversation: Conversation, date: str | None,
               owner: str | None = "") -> list[int]:
        """Prompt token ids; ``owner`` names the cache namespace (None: do not cache)."""
        steps = self._assemble(conversation, date, owner)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    async def render_async(self, conversation: Conversation, date: str | None,
                           owner: str | None = "", slice_s: float = DEFAULT_SLICE_S) -> list[int]:
        """``render``, handing the event loop back between messages every ``slice_s``."""
        steps = self._assemble(conversation, date, owner)
        mark = time.perf_counter()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value
            if time.perf_counter() - mark >= slice_s:
                await asyncio.sleep(0)
                mark = time.perf_counter()

    def _assemble(self, conversation: Conversation, date: str | None,
                  owner: str | None) -> Generator[None, None, list[int]]:
        """The prompt, piece by piece; yields after each piece it had to render."""
        date = conversation_date(date)
        caching = owner is not None and self.max_bytes > 0
        key = _head_key(conversation, date, owner) if caching else None
        cached = self._get(key) if key is not None else None
        if cached is None:
            tokens = render_head(self.harmony, conversation, date)
            if key is not None:
                self._put(key, tokens, _head_bytes(key))
            yield
        else:
            tokens = cached.tolist()
        for message in _kept(conversation.messages):
            key = (owner, message)
            cached = self._get(key) if caching else None
            if cached is None:
                piece = _render_message(self.harmony, message)
                if caching:
                    self._put(key, piece, _message_bytes(message))
                tokens += piece
                yield
            else:
                tokens += cached
        tokens += self._tail
        return tokens

    def _get(self, key: tuple) -> array.array | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def _put(self, key: tuple, tokens: list[int], key_bytes: int) -> None:
        size = 4 * len(tokens) + key_bytes + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)  # two requests in flight can render the same piece
        if old is not None:
            self.bytes -= old[1]
        self._entries[key] = (array.array("I", tokens), size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted


def _message_bytes(message: Message) -> int:
    return sys.getsizeof(message.text)


def _head_bytes(key: tuple) -> int:
    *_, instructions, tools = key
    return len(tools) + sum(map(sys.getsizeof, instructions))


def _head_key(conversation: Conversation, date: str, owner: str) -> tuple | None:
    """What decides the head, exactly: marshal keeps key order and tells 1, 1.0 and True apart.
    None (not cached) for schemas marshal cannot write (not JSON-like)."""
    try:
        tools = marshal.dumps([(t.name, t.description, t.parameters) for t in conversation.tools])
    except ValueError:
        return None
    return (owner, "head", conversation.effort, date, tuple(conversation.instructions), tools)
