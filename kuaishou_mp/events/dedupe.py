"""Applying each pushed message once: who has applied which ``msgId``.

The platform pushes a message again when the answer was not the expected one, so the same
``msgId`` can arrive several times, at several receivers. A receiver first *claims* the
message; it marks it *done* only after it was applied, and *releases* the claim when applying
failed, so the platform's next delivery applies it again.
"""

from __future__ import annotations

import collections
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar, runtime_checkable

from .._redis_support import storage_call
from .._validate import number, text

if TYPE_CHECKING:
    import redis.asyncio

    from ..auth.storage import RedisTokenStorage

__all__ = ["DAY", "Claim", "InMemoryPushDedupe", "PushDedupe", "RedisPushDedupe"]

logger = logging.getLogger("kuaishou_mp")

T = TypeVar("T")

DAY: Final = 86400.0
"""How long an applied ``msgId`` is remembered by default, in seconds."""

Claim = Literal["new", "done", "busy"]
"""The outcome of :meth:`PushDedupe.claim`: ``new`` (yours to apply), ``done`` (applied
before), ``busy`` (another receiver is applying it right now)."""


@runtime_checkable
class PushDedupe(Protocol):
    """What :class:`~kuaishou_mp.events.PushReceiver` needs to apply each message once."""

    async def claim(self, component_app_id: str, msg_id: str) -> Claim:
        """Claim ``msg_id`` for applying, unless it was applied or is being applied."""
        ...

    async def done(self, component_app_id: str, msg_id: str) -> None:
        """Remember that ``msg_id`` was applied (after applying it)."""
        ...

    async def release(self, component_app_id: str, msg_id: str) -> None:
        """Give a claim back: applying failed, a later delivery may apply it."""
        ...


class InMemoryPushDedupe:
    """Remembers applied ``msgId``\\ s in this process, for ``ttl`` seconds.

    Enough for one receiver process; use :class:`RedisPushDedupe` when several receivers
    share the push URL.

    Args:
        ttl: Seconds an applied ``msgId`` is remembered.
        clock: Seconds (tests pass a fake clock).
    """

    def __init__(self, *, ttl: float = DAY, clock: Callable[[], float] = time.monotonic) -> None:
        number("ttl", ttl, finite=False)
        self._ttl = ttl
        self._clock = clock
        # Insertion order is expiry order (one ttl for all), so expired entries are at the front.
        self._done: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()
        self._busy: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"<InMemoryPushDedupe {len(self._done)} remembered>"

    def __len__(self) -> int:
        self._forget_expired()
        return len(self._done)

    def _forget_expired(self) -> None:
        now = self._clock()
        done = self._done
        while done:
            key, expires = next(iter(done.items()))
            if expires > now:
                break
            del done[key]

    async def claim(self, component_app_id: str, msg_id: str) -> Claim:
        """Claim ``msg_id`` unless it was applied within ``ttl`` or is being applied."""
        self._forget_expired()
        key = (component_app_id, msg_id)
        if key in self._done:
            return "done"
        if key in self._busy:
            return "busy"
        self._busy.add(key)
        return "new"

    async def done(self, component_app_id: str, msg_id: str) -> None:
        """Remember ``msg_id`` as applied for ``ttl`` seconds."""
        key = (component_app_id, msg_id)
        self._busy.discard(key)
        self._done.pop(key, None)
        self._done[key] = self._clock() + self._ttl

    async def release(self, component_app_id: str, msg_id: str) -> None:
        """Give the claim back."""
        self._busy.discard((component_app_id, msg_id))


# Release a claim only while it is still ours (not already marked done, not someone else's).
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisPushDedupe:
    """Remembers applied ``msgId``\\ s in Redis, shared by every receiver on the same Redis.

    Keys live in the token storage's key space: ``{prefix}:{component_app_id}:push:{msgId}``.
    A claim is ``SET key pending:<owner> NX EX lease``; once applied the key is overwritten
    with ``done`` for ``ttl`` seconds. A receiver that dies while applying leaves a claim that
    expires after ``lease`` seconds, so a later delivery can apply the message.

    Args:
        client: A ``redis.asyncio.Redis`` (not closed by this object).
        prefix: The first part of every key; use your token storage's.
        ttl: Seconds an applied ``msgId`` is remembered.
        lease: Seconds a claim lasts if its receiver never finishes.
        timeout: Seconds one Redis round trip may take.

    Raises:
        InvalidInputError: An argument is not positive, or ``prefix`` is empty.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "kuaishou_mp",
        ttl: float = DAY,
        lease: float = 60.0,
        timeout: float = 2.0,
    ) -> None:
        text("prefix", prefix)
        for name, value in (("ttl", ttl), ("lease", lease), ("timeout", timeout)):
            number(name, value, finite=False)
        self._client = client
        self._prefix = prefix
        self._ttl = max(1, int(ttl))
        self._lease = max(1, int(lease))
        self._timeout = timeout
        self._owner = "pending:" + secrets.token_hex(8)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def for_storage(cls, storage: RedisTokenStorage, **options: Any) -> RedisPushDedupe:
        """Share a :class:`~kuaishou_mp.auth.RedisTokenStorage`'s client and key prefix.

        Args:
            storage: The token storage.
            **options: ``ttl``, ``lease``, ``timeout``.
        """
        return cls(storage.client, prefix=storage.prefix, **options)

    def __repr__(self) -> str:
        return f"<RedisPushDedupe prefix={self._prefix!r}>"

    def key(self, component_app_id: str, msg_id: str) -> str:
        """The Redis key that remembers ``msg_id``."""
        return f"{self._prefix}:{component_app_id}:push:{msg_id}"

    async def _run(self, aw: Awaitable[T], what: str) -> T:
        return await storage_call(aw, self._timeout, what)

    async def claim(self, component_app_id: str, msg_id: str) -> Claim:
        """``SET NX EX`` the claim; otherwise say whether it is done or busy.

        Raises:
            TokenStorageError: Redis failed.
        """
        key = self.key(component_app_id, msg_id)
        got = await self._run(
            self._client.set(key, self._owner, nx=True, ex=self._lease), "push claim"
        )
        if got:
            return "new"
        value = await self._run(self._client.get(key), "push claim")
        if isinstance(value, bytes):
            value = value.decode()
        if value == "done":
            return "done"
        if value is None:  # the claim expired in between: try once more
            got = await self._run(
                self._client.set(key, self._owner, nx=True, ex=self._lease), "push claim"
            )
            return "new" if got else "busy"
        return "busy"

    async def done(self, component_app_id: str, msg_id: str) -> None:
        """Overwrite the claim with ``done`` for ``ttl`` seconds.

        Raises:
            TokenStorageError: Redis failed.
        """
        key = self.key(component_app_id, msg_id)
        await self._run(self._client.set(key, "done", ex=self._ttl), "push mark")

    async def release(self, component_app_id: str, msg_id: str) -> None:
        """Delete the claim if it is still ours.

        Raises:
            TokenStorageError: Redis failed.
        """
        key = self.key(component_app_id, msg_id)
        await self._run(self._release(keys=(key,), args=(self._owner,)), "push release")
