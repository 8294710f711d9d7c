"""The Redis token storage and its cross-process refresh lock (extra ``kuaishou_mp[redis]``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..._redis_support import connect, storage_call
from ..._validate import number, text
from ._protocol import LockTimeoutError, StoredToken, TokenStorageError

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RedisLock", "RedisTokenStorage"]

logger = logging.getLogger("kuaishou_mp")

T = TypeVar("T")

# KEYS[1] the access (or component) token hash, KEYS[2] the refresh token hash.
# ARGV: value, expires_at, refresh_at, ttl_ms[, refresh value, refresh expires_at].
# One script: both writes or neither, and the refresh token is overwritten in place (HSET),
# never deleted first, so a reader always finds one.
_SAVE: Final = """
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'e', ARGV[2], 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[5] then
  redis.call('HSET', KEYS[2], 'v', ARGV[5], 'e', ARGV[6])
  redis.call('PERSIST', KEYS[2])
end
return 1
"""

# Compare-and-delete of a token hash: only the token that failed is thrown away.
_INVALIDATE: Final = """
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Release and extend a lock only while we own it.
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_EXTEND: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1] the ticket hash (v: ticket, t: event time). ARGV: ticket, event time or ''.
# One key, so a Redis Cluster has nothing to move; a ticket without a time always replaces.
_SAVE_TICKET: Final = """
if ARGV[2] ~= '' and redis.call('TYPE', KEYS[1]).ok == 'hash' then
  local stored = redis.call('HGET', KEYS[1], 't')
  if stored and tonumber(stored) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
end
return 1
"""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class _RedisOps:
    """Bounded Redis round trips whose failures become :class:`TokenStorageError`."""

    def __init__(self, client: redis.asyncio.Redis, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def run(self, aw: Awaitable[T], what: str, app_id: str | None) -> T:
        return await storage_call(aw, self.timeout, what, app_id)


class RedisLock:
    """A lock in Redis held by one owner at a time, across processes and machines.

    Acquire is ``SET key owner NX PX ttl`` with a random owner token, retried until
    ``timeout``; release and extension are Lua scripts that act only while the key still holds
    our token, so a lock that expired and was taken by someone else is never released or
    extended by us. While held, a watchdog task extends it every ``ttl / 3`` seconds; if the
    holder dies, the watchdog dies with it and the lock expires ``ttl`` seconds later.

    Args:
        client: A ``redis.asyncio.Redis``.
        key: The lock's key.
        ttl: Seconds the lock lives without extension.
        timeout: Seconds :meth:`acquire` waits; ``0`` tries once.
        op_timeout: Seconds one Redis round trip may take.
        auto_extend: Run the watchdog (tests turn it off to simulate a dead holder).

    Raises:
        InvalidInputError: ``ttl`` is not positive or ``timeout`` is negative.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        key: str,
        *,
        ttl: float,
        timeout: float,
        op_timeout: float = 2.0,
        auto_extend: bool = True,
    ) -> None:
        number("ttl", ttl, finite=False)
        number("timeout", timeout, low_ok=True, finite=False)
        self.key = key
        self.owner = secrets.token_hex(16)
        self._ops = _RedisOps(client, op_timeout)
        self._ttl = ttl
        self._timeout = timeout
        self._auto_extend = auto_extend
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)
        self._watchdog: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RedisLock {self.key} held={self._watchdog is not None}>"

    async def try_acquire(self) -> bool:
        """One attempt: ``SET NX PX``. Returns whether the lock is now ours.

        Raises:
            TokenStorageError: Redis failed.
        """
        client = self._ops.client
        done = await self._ops.run(
            client.set(self.key, self.owner, nx=True, px=_ms(self._ttl)), "lock", None
        )
        if done and self._auto_extend:
            self._watchdog = asyncio.create_task(self._keep_alive())
        return bool(done)

    async def acquire(self) -> None:
        """Wait until the lock is ours, polling with growing, jittered intervals.

        Raises:
            LockTimeoutError: Not acquired within ``timeout``.
            TokenStorageError: Redis failed.
        """
        deadline = time.monotonic() + self._timeout
        pause = 0.005
        while not await self.try_acquire():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeoutError(
                    f"the refresh lock was held for over {self._timeout:g}s"
                    if self._timeout > 0
                    else "the refresh lock is held"
                )
            await asyncio.sleep(min(left, pause * (0.5 + secrets.randbelow(1000) / 1000)))
            pause = min(pause * 2, 0.1)

    async def release(self) -> bool:
        """Release the lock if it is still ours; returns whether it was.

        Raises:
            TokenStorageError: Redis failed (the lock then expires after ``ttl``).
        """
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        released = await self._ops.run(
            self._release(keys=(self.key,), args=(self.owner,)), "unlock", None
        )
        return bool(released)

    async def owned(self) -> bool:
        """Whether the key holds our owner token right now.

        Raises:
            TokenStorageError: Redis failed.
        """
        value = await self._ops.run(self._ops.client.get(self.key), "lock check", None)
        return _text(value) == self.owner

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release()

    async def _keep_alive(self) -> None:
        interval = self._ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                kept = await self._ops.run(
                    self._extend(keys=(self.key,), args=(self.owner, _ms(self._ttl))),
                    "lock extension",
                    None,
                )
            except TokenStorageError as exc:
                logger.warning("cannot extend the refresh lock %s: %s", self.key, exc)
                continue
            if not kept:
                logger.warning("lost the refresh lock %s (it expired)", self.key)
                return


class RedisTokenStorage:
    """Tokens and locks in Redis, shared by every process using the same Redis and prefix.

    Keys (``{app_id}`` in braces keeps an authorizer's keys in one Redis Cluster slot):

    * ``{prefix}:{component_app_id}:component:ticket``: hash ``v`` (the latest ticket), ``t``
      (its event time, when known);
    * ``{prefix}:{component_app_id}:component:token``: hash ``v`` (token), ``e`` (expires
      at), ``r`` (refresh due at); expires with the token;
    * ``{prefix}:{component_app_id}:{{app_id}}:access``: the same for an authorizer's access
      token;
    * ``{prefix}:{component_app_id}:{{app_id}}:refresh``: hash ``v``, ``e``; no TTL: refresh
      tokens are kept durably (enable Redis persistence, AOF or RDB) and overwritten in place
      when rotated;
    * ``...:component:lock`` and ``...:{{app_id}}:lock``: the refresh locks (:class:`RedisLock`).

    Args:
        client: A ``redis.asyncio.Redis`` (bytes or decoded responses). Closed by
            :meth:`aclose` only if ``owns_client`` (as with :meth:`from_url`).
        prefix: First part of every key.
        timeout: Seconds one Redis round trip may take before it fails with
            :class:`TokenStorageError`.
        clock: Seconds since the epoch; the token expiry times must use the same scale.
        owns_client: Close ``client`` in :meth:`aclose`.

    Raises:
        InvalidInputError: ``prefix`` is empty or ``timeout`` is not positive.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "kuaishou_mp",
        timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
        owns_client: bool = False,
    ) -> None:
        text("prefix", prefix)
        number("timeout", timeout, finite=False)
        self._client = client
        self._ops = _RedisOps(client, timeout)
        self._prefix = prefix
        self._timeout = timeout
        self._clock = clock
        self._owns_client = owns_client
        self._closed = False
        self._save = client.register_script(_SAVE)
        self._invalidate = client.register_script(_INVALIDATE)
        self._save_ticket = client.register_script(_SAVE_TICKET)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "kuaishou_mp",
        timeout: float = 2.0,
        **redis_options: Any,
    ) -> RedisTokenStorage:
        """Connect by URL; the storage owns the connection and closes it in :meth:`aclose`.

        No connection is made until first use, so this is safe outside a running loop.

        Args:
            url: ``redis://[[user]:[password]@]host:port/db``, ``rediss://...``, ``unix://...``.
            prefix: First part of every key.
            timeout: Seconds one round trip may take (also the socket timeouts).
            **redis_options: Passed to ``redis.asyncio.Redis.from_url``.

        Raises:
            InvalidInputError: Malformed URL or arguments.
        """
        return cls(
            connect(url, timeout=timeout, **redis_options),
            prefix=prefix,
            timeout=timeout,
            owns_client=True,
        )

    def __repr__(self) -> str:
        return f"<RedisTokenStorage prefix={self._prefix!r}>"

    @property
    def client(self) -> redis.asyncio.Redis:
        """The ``redis.asyncio.Redis`` the storage talks to (to share it, e.g. with
        :class:`~kuaishou_mp.events.RedisPushDedupe`)."""
        return self._client

    @property
    def prefix(self) -> str:
        """The first part of every key."""
        return self._prefix

    # -- keys ------------------------------------------------------------------------------------

    def key(self, component_app_id: str, app_id: str | None, kind: str) -> str:
        """The Redis key of ``kind`` (``access``, ``refresh``, ``lock``; with ``app_id=None``:
        ``ticket``, ``token``, ``lock``) for an authorizer or the component."""
        if app_id is None:
            return f"{self._prefix}:{component_app_id}:component:{kind}"
        return f"{self._prefix}:{component_app_id}:{{{app_id}}}:{kind}"

    # -- the protocol ----------------------------------------------------------------------------

    async def load_ticket(self, component_app_id: str) -> str | None:
        """The latest pushed component ticket, or ``None``.

        Raises:
            TokenStorageError: Redis failed.
        """
        value = await self._ops.run(
            self._client.hget(self.key(component_app_id, None, "ticket"), "v"), "read", None
        )
        return _text(value)

    async def save_ticket(
        self, component_app_id: str, ticket: str, event_time: int | None = None
    ) -> bool:
        """Replace the ticket unless the stored one has a later ``event_time`` (one Lua script).

        Raises:
            TokenStorageError: Redis failed.
        """
        saved = await self._ops.run(
            self._save_ticket(
                keys=(self.key(component_app_id, None, "ticket"),),
                args=(ticket, "" if event_time is None else str(event_time)),
            ),
            "write",
            None,
        )
        return bool(saved)

    async def load_component_token(self, component_app_id: str) -> StoredToken | None:
        """The current component access token, or ``None``.

        Raises:
            TokenStorageError: Redis failed.
        """
        return await self._load(self.key(component_app_id, None, "token"), None)

    async def save_component_token(self, component_app_id: str, token: StoredToken) -> None:
        """Replace the component access token; the key expires with it.

        Raises:
            TokenStorageError: Redis failed.
        """
        await self._write(self.key(component_app_id, None, "token"), None, token, None, None)

    async def invalidate_component_token(self, component_app_id: str, token: str) -> bool:
        """Delete the component token if its value is ``token`` (one Lua script).

        Raises:
            TokenStorageError: Redis failed.
        """
        return await self._compare_delete(self.key(component_app_id, None, "token"), token, None)

    async def load_access_token(self, component_app_id: str, app_id: str) -> StoredToken | None:
        """The authorizer's current access token, or ``None``.

        Raises:
            TokenStorageError: Redis failed.
        """
        return await self._load(self.key(component_app_id, app_id, "access"), app_id)

    async def load_refresh_token(self, component_app_id: str, app_id: str) -> StoredToken | None:
        """The authorizer's refresh token, or ``None``.

        Raises:
            TokenStorageError: Redis failed.
        """
        return await self._load(self.key(component_app_id, app_id, "refresh"), app_id)

    async def save_authorizer_tokens(
        self,
        component_app_id: str,
        app_id: str,
        access: StoredToken,
        refresh: StoredToken | None,
    ) -> None:
        """Write both tokens in one Lua script; the refresh token is overwritten in place.

        Raises:
            TokenStorageError: Redis failed.
        """
        await self._write(
            self.key(component_app_id, app_id, "access"),
            self.key(component_app_id, app_id, "refresh"),
            access,
            refresh,
            app_id,
        )

    async def invalidate_access_token(self, component_app_id: str, app_id: str, token: str) -> bool:
        """Delete the access token if its value is ``token`` (one Lua script).

        Raises:
            TokenStorageError: Redis failed.
        """
        return await self._compare_delete(
            self.key(component_app_id, app_id, "access"), token, app_id
        )

    def lock(
        self, component_app_id: str, app_id: str | None, *, ttl: float, timeout: float
    ) -> RedisLock:
        """A :class:`RedisLock` on refreshing the authorizer's (or the component's) tokens."""
        return RedisLock(
            self._client,
            self.key(component_app_id, app_id, "lock"),
            ttl=ttl,
            timeout=timeout,
            op_timeout=self._timeout,
        )

    async def aclose(self) -> None:
        """Close the Redis client if the storage owns it (:meth:`from_url`). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    # -- internals -------------------------------------------------------------------------------

    async def _load(self, key: str, app_id: str | None) -> StoredToken | None:
        value, expires_at, refresh_at = await self._ops.run(
            self._client.hmget(key, ["v", "e", "r"]), "read", app_id
        )
        text = _text(value)
        if not text or expires_at is None:
            return None
        expires = float(_text(expires_at) or 0)
        refresh = float(_text(refresh_at) or expires) if refresh_at is not None else expires
        return StoredToken(text, expires, refresh)

    async def _write(
        self,
        key: str,
        refresh_key: str | None,
        token: StoredToken,
        refresh: StoredToken | None,
        app_id: str | None,
    ) -> None:
        ttl = _ms(token.expires_at - self._clock())
        args: list[str | int] = [token.value, repr(token.expires_at), repr(token.refresh_at), ttl]
        keys = [key]
        if refresh is not None and refresh_key is not None:
            keys.append(refresh_key)
            args += [refresh.value, repr(refresh.expires_at)]
        await self._ops.run(self._save(keys=keys, args=args), "write", app_id)

    async def _compare_delete(self, key: str, token: str, app_id: str | None) -> bool:
        deleted = await self._ops.run(
            self._invalidate(keys=(key,), args=(token,)), "invalidate", app_id
        )
        return bool(deleted)
