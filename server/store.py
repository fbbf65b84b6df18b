"""Stored responses (Responses API ``store``): a small interface and the in-memory default.

A stored response belongs to the API key that created it: every call names its ``owner`` (a
digest of the key, never the key itself; "" when the server has no keys, one shared space), and
a response stored by one owner is invisible to every other, with the same ``None`` as for an id
that never existed. Records keep the full conversation (``context``) so that
``previous_response_id`` works even after the responses before it were evicted.

The in-memory store bounds itself by count, by bytes (the JSON size of each record) and by age;
each eviction is counted in ``gptoss_response_store_evictions_total{reason}``. A shared store for
several replicas implements the same interface (``--response-store redis://...``).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import orjson

from server import metrics


@dataclass(slots=True)
class StoredResponse:
    response: dict  # the Response object, as returned to the client
    input_items: list[dict]  # this request's input items, with ids (GET .../input_items)
    context: list[dict]  # every item of the conversation so far, output included

    def to_json(self) -> bytes:
        return orjson.dumps({"response": self.response, "input_items": self.input_items,
                             "context": self.context})

    @classmethod
    def from_json(cls, data: bytes) -> StoredResponse:
        return cls(**orjson.loads(data))


class StoreUnavailableError(RuntimeError):
    """The store cannot be reached (a shared store's outage): a 503 for requests that need it."""


class ResponseStore(Protocol):
    async def put(self, owner: str, response_id: str, record: StoredResponse) -> None: ...

    async def get(self, owner: str, response_id: str) -> StoredResponse | None: ...

    async def delete(self, owner: str, response_id: str) -> bool:
        """True if it existed (for this owner) and is gone now."""

    async def close(self) -> None: ...


def owner_of(api_key: str | None) -> str:
    """The store's owner for a request: a digest of its key, "" when auth is off."""
    return hashlib.sha256(api_key.encode()).hexdigest() if api_key else ""


class MemoryStore:
    """In this process: an LRU-by-insertion dict bounded by count, bytes and TTL."""

    def __init__(self, max_count: int, max_bytes: int, ttl: float, clock=time.monotonic) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._records: OrderedDict[tuple[str, str], tuple[float, int, bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._records)

    async def put(self, owner: str, response_id: str, record: StoredResponse) -> None:
        data = record.to_json()
        if len(data) > self.max_bytes:
            metrics.STORE_EVICTIONS.labels("too_large").inc()
            return
        self._drop((owner, response_id))
        self._records[(owner, response_id)] = (self._clock() + self.ttl, len(data), data)
        self.bytes += len(data)
        self._expire()
        while len(self._records) > self.max_count:
            self._evict_oldest("count")
        while self.bytes > self.max_bytes:
            self._evict_oldest("bytes")

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        self._expire()
        entry = self._records.get((owner, response_id))
        return None if entry is None else StoredResponse.from_json(entry[2])

    async def delete(self, owner: str, response_id: str) -> bool:
        self._expire()
        return self._drop((owner, response_id))

    async def close(self) -> None:
        self._records.clear()
        self.bytes = 0

    def _drop(self, key: tuple[str, str]) -> bool:
        entry = self._records.pop(key, None)
        if entry is None:
            return False
        self.bytes -= entry[1]
        return True

    def _evict_oldest(self, reason: str) -> None:
        key = next(iter(self._records))
        self._drop(key)
        metrics.STORE_EVICTIONS.labels(reason).inc()

    def _expire(self) -> None:
        # insertion order is expiry order (one TTL for all), so expired records lead
        now = self._clock()
        while self._records:
            expires = next(iter(self._records.values()))[0]
            if expires > now:
                return
            self._evict_oldest("ttl")


def build_store(settings) -> ResponseStore:
    if settings.response_store == "memory":
        return MemoryStore(settings.response_store_max_count, settings.response_store_max_bytes,
                           settings.response_store_ttl)
    from server.store_redis import RedisStore  # noqa: PLC0415 - only with a redis URL

    return RedisStore.from_settings(settings)
