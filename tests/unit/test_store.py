"""The response store contract, for the in-memory store and for Redis (a real redis-server).

Every contract test runs against both: isolation per owner, eviction of the oldest by count and
by bytes, TTL, delete, too-large records, re-put. Redis' own behaviour follows: its bookkeeping
stays consistent, two stores on one database (two replicas) share records and bounds, an
outage is StoreUnavailableError (quickly) and the store recovers when Redis is back, and the
password comes from the environment.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from server.store import MemoryStore, StoredResponse, StoreUnavailableError, owner_of
from server.store_redis import PASSWORD_ENV, RedisStore

OWNER_A, OWNER_B = owner_of("key-a"), owner_of("key-b")
NO_AUTH = owner_of(None)  # "": the one shared space of a server without keys
REDIS_TTL = 1.0  # seconds: long enough to read a record back, short enough to wait out


def record(response_id: str, pad: int = 0, note: str = "") -> StoredResponse:
    return StoredResponse({"id": response_id, "object": "response", "pad": "x" * pad,
                           "note": note},
                          [{"id": "msg_1", "type": "message", "role": "user", "content": "hi"}],
                          [{"type": "message", "role": "user", "content": "hi"}])


def evictions(reason: str) -> float:
    value = REGISTRY.get_sample_value("gptoss_response_store_evictions_total", {"reason": reason})
    return value or 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def wait_until(condition, timeout: float = 15.0, what: str = "the condition"):
    """Poll an async ``condition()`` until it is truthy (bounded; CI runs on 2 busy cores)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


class MemoryKind:
    name = "memory"

    def __init__(self) -> None:
        self.clock = FakeClock()

    def make(self, max_count: int = 100, max_bytes: int = 1 << 20, ttl: float = 60.0):
        return MemoryStore(max_count, max_bytes, ttl, clock=self.clock)

    async def outlive(self, store, *keys: tuple[str, str]) -> None:
        """Let the TTL of the stored ``(owner, id)`` records pass."""
        self.clock.now += store.ttl + 1


class RedisKind:
    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self.stores: list[RedisStore] = []

    def make(self, max_count: int = 100, max_bytes: int = 1 << 20, ttl: float = 60.0):
        store = RedisStore.from_settings(SimpleNamespace(
            response_store=self.url, response_store_max_count=max_count,
            response_store_max_bytes=max_bytes, response_store_ttl=ttl))
        self.stores.append(store)
        return store

    async def outlive(self, store, *keys: tuple[str, str]) -> None:
        async def gone() -> bool:
            return all([await store.get(*key) is None for key in keys])
        await wait_until(gone, what="Redis to expire the records")


@pytest.fixture(params=["memory", "redis"])
async def kind(request):
    if request.param == "memory":
        yield MemoryKind()
        return
    redis_kind = RedisKind(request.getfixturevalue("redis_url"))
    yield redis_kind
    for store in redis_kind.stores:
        await store.close()


async def test_a_record_belongs_to_its_owner(kind):
    store = kind.make()
    await store.put(OWNER_A, "resp_1", record("resp_1"))
    assert (await store.get(OWNER_A, "resp_1")) == record("resp_1")
    for other in (OWNER_B, NO_AUTH):
        assert await store.get(other, "resp_1") is None
        assert await store.delete(other, "resp_1") is False
    assert (await store.get(OWNER_A, "resp_1")) == record("resp_1")  # untouched by the others
    # the same id under another owner is another record
    await store.put(OWNER_B, "resp_1", record("resp_1", note="b's"))
    assert (await store.get(OWNER_A, "resp_1")).response["note"] == ""
    assert (await store.get(OWNER_B, "resp_1")).response["note"] == "b's"


async def test_delete(kind):
    store = kind.make()
    await store.put(OWNER_A, "resp_1", record("resp_1"))
    await store.put(OWNER_A, "resp_2", record("resp_2"))
    assert await store.delete(OWNER_A, "resp_1") is True
    assert await store.get(OWNER_A, "resp_1") is None
    assert await store.delete(OWNER_A, "resp_1") is False
    assert await store.delete(OWNER_A, "resp_never") is False
    assert await store.get(OWNER_A, "resp_2") == record("resp_2")


async def test_evicts_the_oldest_beyond_the_count(kind):
    store = kind.make(max_count=2)
    before = evictions("count")
    for n in (1, 2, 3):
        await store.put(OWNER_A if n != 2 else OWNER_B, f"resp_{n}", record(f"resp_{n}"))
    assert await store.get(OWNER_A, "resp_1") is None
    assert await store.get(OWNER_B, "resp_2") is not None
    assert await store.get(OWNER_A, "resp_3") is not None
    assert evictions("count") - before == 1
    # a deleted record frees its place: nothing more is evicted
    assert await store.delete(OWNER_B, "resp_2")
    await store.put(OWNER_A, "resp_4", record("resp_4"))
    assert await store.get(OWNER_A, "resp_3") is not None
    assert evictions("count") - before == 1


async def test_evicts_the_oldest_beyond_the_bytes(kind):
    size = len(record("resp_1", pad=300).to_json())
    store = kind.make(max_bytes=2 * size + size // 2)
    before = evictions("bytes")
    for n in (1, 2, 3):
        await store.put(OWNER_A, f"resp_{n}", record(f"resp_{n}", pad=300))
    assert await store.get(OWNER_A, "resp_1") is None
    assert await store.get(OWNER_A, "resp_2") is not None
    assert await store.get(OWNER_A, "resp_3") is not None
    assert evictions("bytes") - before == 1
    # one record twice the size makes room for itself: both older ones go
    await store.put(OWNER_A, "resp_big", record("resp_big", pad=2 * size - size // 4))
    assert await store.get(OWNER_A, "resp_2") is None
    assert await store.get(OWNER_A, "resp_3") is None
    assert await store.get(OWNER_A, "resp_big") is not None
    assert evictions("bytes") - before == 3


async def test_a_record_over_the_byte_bound_is_not_stored(kind):
    store = kind.make(max_bytes=2000)
    await store.put(OWNER_A, "resp_small", record("resp_small"))
    before = evictions("too_large")
    await store.put(OWNER_A, "resp_huge", record("resp_huge", pad=5000))
    assert await store.get(OWNER_A, "resp_huge") is None
    assert await store.get(OWNER_A, "resp_small") is not None  # nothing else was evicted
    assert evictions("too_large") - before == 1
    # too large for a re-put too: the stored version stays
    await store.put(OWNER_A, "resp_small", record("resp_small", pad=5000))
    assert (await store.get(OWNER_A, "resp_small")) == record("resp_small")


async def test_a_re_put_replaces_the_record_and_makes_it_the_newest(kind):
    store = kind.make(max_count=2)
    await store.put(OWNER_A, "resp_1", record("resp_1"))
    await store.put(OWNER_A, "resp_2", record("resp_2"))
    await store.put(OWNER_A, "resp_1", record("resp_1", note="again"))
    assert (await store.get(OWNER_A, "resp_1")).response["note"] == "again"
    before = evictions("count")
    await store.put(OWNER_A, "resp_3", record("resp_3"))  # resp_2 is now the oldest
    assert await store.get(OWNER_A, "resp_2") is None
    assert (await store.get(OWNER_A, "resp_1")).response["note"] == "again"
    assert evictions("count") - before == 1


async def test_records_expire_after_the_ttl(kind):
    store = kind.make(max_count=2, ttl=REDIS_TTL)
    await store.put(OWNER_A, "resp_1", record("resp_1"))
    await store.put(OWNER_B, "resp_2", record("resp_2"))
    assert await store.get(OWNER_A, "resp_1") is not None
    await kind.outlive(store, (OWNER_A, "resp_1"), (OWNER_B, "resp_2"))
    assert await store.get(OWNER_A, "resp_1") is None
    assert await store.get(OWNER_B, "resp_2") is None
    assert await store.delete(OWNER_A, "resp_1") is False
    # expired records hold no place: two new ones fit without a count eviction
    before = evictions("count")
    await store.put(OWNER_A, "resp_3", record("resp_3"))
    await store.put(OWNER_A, "resp_4", record("resp_4"))
    assert evictions("count") == before
    assert await store.get(OWNER_A, "resp_3") is not None


async def test_memory_store_ttl_on_a_fake_clock():
    clock = FakeClock()
    store = MemoryStore(10, 1 << 20, ttl=30, clock=clock)
    await store.put(OWNER_A, "resp_1", record("resp_1"))
    clock.now += 29
    assert await store.get(OWNER_A, "resp_1") is not None
    before = evictions("ttl")
    clock.now += 1
    assert await store.get(OWNER_A, "resp_1") is None
    assert evictions("ttl") - before == 1


# -- Redis only ---------------------------------------------------------------------------------

def redis_store(url: str, **bounds) -> RedisStore:
    return RedisKind(url).make(**bounds)


async def test_redis_bookkeeping_matches_the_records(redis_server, redis_url):
    """After concurrent puts, re-puts, evictions and deletes from two stores, and expiry, the
    index holds exactly the live records and the byte total is their size: nothing was half
    done."""
    store = redis_store(redis_url, max_count=5, max_bytes=6000, ttl=60)
    short = redis_store(redis_url, max_count=5, max_bytes=6000, ttl=0.2)
    try:
        await short.put(OWNER_B, "resp_brief", record("resp_brief"))
        other = redis_store(redis_url, max_count=5, max_bytes=6000, ttl=60)  # a second replica
        await asyncio.gather(*[  # interleaved puts, re-puts and deletes from both
            (store if n % 3 else other).put(OWNER_A if n % 2 else OWNER_B, f"resp_{n % 8}",
                                            record(f"resp_{n % 8}", pad=(n * 397) % 1500))
            for n in range(40)], *[other.delete(OWNER_A, f"resp_{n}") for n in range(8)])
        await other.close()
        await store.delete(OWNER_A, "resp_7")
        await store.put(OWNER_A, "resp_x", record("resp_x", pad=100))
        client = redis_server.client()
        index = {member.decode(): score for member, score in
                 client.zrange(store.prefix + "index", 0, -1, withscores=True)}
        records = {key.decode() for key in client.scan_iter(match=store.prefix + "*")
                   if key.decode() not in store._meta}
        assert set(index) == records
        assert {member.decode() for member in client.zrange(store.prefix + "expiry", 0, -1)} == records
        assert 0 < len(records) <= 5
        sizes = {key.decode(): int(size) for key, size in client.hgetall(store.prefix + "sizes").items()}
        assert sizes == {key: client.strlen(key) for key in records}
        assert int(client.get(store.prefix + "bytes")) == sum(sizes.values()) <= 6000
        # the newest record is the last in the index, and every record expires within the TTL
        assert max(index, key=index.get) == store._key(OWNER_A, "resp_x")
        assert all(0 < client.pttl(key) <= 60_000 for key in records)
        client.close()
    finally:
        await store.close()
        await short.close()


async def test_redis_forgets_expired_records_while_others_live(redis_url):
    """Expired records leave the count and byte bookkeeping even while longer-lived records
    (another replica's TTL) keep that bookkeeping alive."""
    lasting = redis_store(redis_url, max_count=3, max_bytes=3 * 1000, ttl=60)
    brief = redis_store(redis_url, max_count=3, max_bytes=3 * 1000, ttl=REDIS_TTL)
    try:
        await lasting.put(OWNER_A, "resp_keep", record("resp_keep", pad=600))
        await brief.put(OWNER_A, "resp_1", record("resp_1", pad=600))
        await brief.put(OWNER_B, "resp_2", record("resp_2", pad=600))
        await RedisKind(redis_url).outlive(brief, (OWNER_A, "resp_1"), (OWNER_B, "resp_2"))
        before = evictions("count"), evictions("bytes")
        await lasting.put(OWNER_A, "resp_3", record("resp_3", pad=600))
        await lasting.put(OWNER_A, "resp_4", record("resp_4", pad=600))
        assert (evictions("count"), evictions("bytes")) == before
        assert await lasting.get(OWNER_A, "resp_keep") is not None
    finally:
        await lasting.close()
        await brief.close()


async def test_two_redis_stores_share_records_and_bounds(redis_url):
    """Two replicas: each reads what the other stored, and the bounds hold for both together."""
    one, two = redis_store(redis_url, max_count=3), redis_store(redis_url, max_count=3)
    try:
        await one.put(OWNER_A, "resp_1", record("resp_1"))
        assert await two.get(OWNER_A, "resp_1") == record("resp_1")
        assert await two.get(OWNER_B, "resp_1") is None
        for n in (2, 3, 4):
            await (two if n % 2 else one).put(OWNER_A, f"resp_{n}", record(f"resp_{n}"))
        assert await one.get(OWNER_A, "resp_1") is None  # the fourth record evicted the first
        assert await two.delete(OWNER_A, "resp_2") is True
        assert await one.get(OWNER_A, "resp_2") is None
    finally:
        await one.close()
        await two.close()


async def test_redis_outage_is_store_unavailable_quickly_and_recovers(start_redis):
    server = start_redis()
    store = redis_store(server.url)
    try:
        await store.put(OWNER_A, "resp_1", record("resp_1"))
        server.stop()
        for call in (store.get(OWNER_A, "resp_1"), store.delete(OWNER_A, "resp_1"),
                     store.put(OWNER_A, "resp_2", record("resp_2"))):
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                await call
            assert time.monotonic() - started < 3
        server.start()  # the same port, empty (no persistence): the store reconnects
        assert await store.get(OWNER_A, "resp_1") is None
        await store.put(OWNER_A, "resp_3", record("resp_3"))
        assert await store.get(OWNER_A, "resp_3") == record("resp_3")
    finally:
        await store.close()


async def test_redis_password_comes_from_the_environment(start_redis, monkeypatch):
    server = start_redis()
    with server.client() as client:
        client.config_set("requirepass", "s3cret-for-tests")
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    without = redis_store(server.url)
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-for-tests")
    with_password = redis_store(server.url)
    try:
        with pytest.raises(StoreUnavailableError):
            await without.get(OWNER_A, "resp_1")
        await with_password.put(OWNER_A, "resp_1", record("resp_1"))
        assert await with_password.get(OWNER_A, "resp_1") == record("resp_1")
    finally:
        await without.close()
        await with_password.close()
