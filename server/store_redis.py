"""Stored responses in Redis (``--response-store redis://HOST:PORT/DB``): one store for every replica.

The same contract as ``MemoryStore``: a record lives under ``PREFIX + owner + ":" + response_id``
(the owner is already a digest of the API key), so another key's lookup misses exactly like an
id that never existed. The bounds are the memory store's, kept for the whole Redis database
rather than per process:

- age: every record is written with ``SET ... PX ttl``; Redis expires it itself;
- count and bytes: an index of the record keys in insertion order (a sorted set), their expiry
  times (another), a hash of their sizes and a byte total. Each put is one Lua script: forget
  the records that have expired, replace a record of the same id, write the record, then evict
  the oldest beyond the bounds. A script runs atomically,
  so no replica ever sees half of a put or an eviction. A delete is a script for the same reason.

Any error talking to Redis (refused, reset, timed out, loading, read-only, out of memory...)
raises ``StoreUnavailableError``: the routes answer 503 for what needs the store and everything
else keeps working. Short socket timeouts keep that answer quick while Redis is unreachable.

The index keys and the records share the ``{responses}`` hash tag, so a Redis Cluster keeps them
in one slot (the scripts touch records they evict).
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager

from redis import exceptions as redis_errors
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server import metrics
from server.store import StoredResponse, StoreUnavailableError

log = logging.getLogger("gpt_oss.store")

PASSWORD_ENV = "GPT_OSS_RESPONSE_STORE_PASSWORD"
DEFAULT_PREFIX = "gpt-oss:{responses}:"
SOCKET_TIMEOUT = 2.0  # seconds: an unreachable Redis is a quick 503, not a hung request

# KEYS: index (zset: record key -> insertion number), expiry (zset: record key -> expiry time,
# ms), sizes (hash: record key -> bytes), total (bytes of all records), seq (insertion counter)
_DROP = """
local index, expiry, sizes, total, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function drop(member)
  local size = redis.call('HGET', sizes, member)
  redis.call('ZREM', index, member)
  redis.call('ZREM', expiry, member)
  redis.call('HDEL', sizes, member)
  if size then redis.call('DECRBY', total, size) end
  return redis.call('DEL', member)
end
"""

# KEYS[6]: the record; ARGV: data, ttl (ms), max count, max bytes -> {count, bytes} evictions
_PUT = "redis.replicate_commands()\n" + _DROP + """
local key, data, ttl = KEYS[6], ARGV[1], tonumber(ARGV[2])
local max_count, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- expired: Redis has dropped their data itself (not an eviction); forget them here too
for _, member in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now)) do drop(member) end
drop(key)  -- a put of an existing id replaces it and makes it the newest
redis.call('SET', key, data, 'PX', ttl)
redis.call('ZADD', index, redis.call('INCR', seq), key)
redis.call('ZADD', expiry, now + ttl, key)
redis.call('HSET', sizes, key, #data)
redis.call('INCRBY', total, #data)
local evicted = {0, 0}
while redis.call('ZCARD', index) > max_count do
  drop(redis.call('ZRANGE', index, 0, 0)[1])
  evicted[1] = evicted[1] + 1
end
while tonumber(redis.call('GET', total) or '0') > max_bytes and redis.call('ZCARD', index) > 0 do
  drop(redis.call('ZRANGE', index, 0, 0)[1])
  evicted[2] = evicted[2] + 1
end
-- the bookkeeping goes with the last record to expire: nothing outlives what it describes
local last = redis.call('ZRANGE', expiry, -1, -1, 'WITHSCORES')[2]
for _, name in ipairs({index, expiry, sizes, total, seq}) do
  redis.call('PEXPIREAT', name, last)
end
return evicted
"""

# KEYS[6]: the record -> 1 if it existed (and had not expired), else 0
_DELETE = _DROP + "return drop(KEYS[6])\n"


class RedisStore:
    """Stored responses in one Redis database, shared by every replica that names it."""

    def __init__(self, client: Redis, max_count: int, max_bytes: int, ttl: float,
                 prefix: str = DEFAULT_PREFIX) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.ttl_ms = max(1, round(ttl * 1000))
        self.prefix = prefix
        self._redis = client
        self._meta = [prefix + name for name in ("index", "expiry", "sizes", "bytes", "seq")]
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)
        self._down = False

    @classmethod
    def from_settings(cls, settings, prefix: str = DEFAULT_PREFIX) -> RedisStore:
        """The URL from ``--response-store``; the password, when set, from the environment
        (``GPT_OSS_RESPONSE_STORE_PASSWORD``, which the chart fills from a Secret) over the URL's."""
        pool = ConnectionPool.from_url(
            settings.response_store, socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            # one immediate retry on a broken connection (Redis restarted, a failover), none on
            # a timeout: an outage is answered within about one socket timeout
            retry=Retry(NoBackoff(), 1, supported_errors=(redis_errors.ConnectionError,)))
        password = os.environ.get(PASSWORD_ENV)
        if password:
            pool.connection_kwargs["password"] = password
        return cls(Redis(connection_pool=pool), settings.response_store_max_count,
                   settings.response_store_max_bytes, settings.response_store_ttl, prefix)

    def _key(self, owner: str, response_id: str) -> str:
        return f"{self.prefix}{owner}:{response_id}"

    async def put(self, owner: str, response_id: str, record: StoredResponse) -> None:
        data = record.to_json()
        if len(data) > self.max_bytes:
            metrics.STORE_EVICTIONS.labels("too_large").inc()
            return
        async with self._reaching():
            count, size = await self._put(
                keys=[*self._meta, self._key(owner, response_id)],
                args=[data, self.ttl_ms, self.max_count, self.max_bytes])
        if count:
            metrics.STORE_EVICTIONS.labels("count").inc(count)
        if size:
            metrics.STORE_EVICTIONS.labels("bytes").inc(size)

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        async with self._reaching():
            data = await self._redis.get(self._key(owner, response_id))
        return None if data is None else StoredResponse.from_json(data)

    async def delete(self, owner: str, response_id: str) -> bool:
        async with self._reaching():
            deleted = await self._delete(keys=[*self._meta, self._key(owner, response_id)])
        return bool(deleted)

    async def close(self) -> None:
        await self._redis.connection_pool.disconnect()

    @asynccontextmanager
    async def _reaching(self):
        """Redis errors become StoreUnavailableError; an outage is logged once, and its end."""
        try:
            yield
        except (redis_errors.RedisError, OSError) as exc:
            if not self._down:
                self._down = True
                log.warning("response store (Redis) unavailable: %s: %s", type(exc).__name__, exc)
            raise StoreUnavailableError(f"Redis did not answer ({type(exc).__name__})") from None
        if self._down:
            self._down = False
            log.info("response store (Redis) reachable again")
