"""Rate limits shared by every process and machine, kept in Redis (extra ``kuaishou_mp[redis]``).

A limit kept inside one process is wrong by a factor of the number of processes calling for the
same authorizers: web workers, cron jobs and batch workers together trip the platform's 400002.
:class:`RedisLimiter` keeps the limiter state in the Redis you already run, and plugs into the
:class:`~kuaishou_mp.Client` in one line::

    from kuaishou_mp import Client, RateLimit
    from kuaishou_mp.redis import RedisLimiter

    limiter = RedisLimiter.from_url(
        "redis://redis.internal:6379/0", RateLimit(per_authorizer_qps=5), component_app_id=cid
    )
    async with Client(cid, rate_limit=limiter) as client:  # the client closes the limiter
        ...

Every process that calls for the same component app id must use the same ``RateLimit``,
``component_app_id`` and ``prefix``: those name the shared keys.

How it works
------------
Each :meth:`RedisLimiter.acquire` is one ``EVALSHA`` of one Lua script (GCRA, the algorithm of
:class:`~kuaishou_mp.InProcessLimiter`, with reservations). The script reads the Redis server's
clock (``TIME``, never the hosts' clocks), takes the caller's slot ``max(now, TAT - tau)`` for
the authorizer and then for the global limit, moves the theoretical arrival times ``TAT`` past
it, and returns how long to wait; the caller sleeps once, until its slot (no polling).
Because the slot is reserved atomically, concurrent processes never over-admit: in any one-second
window an authorizer gets fewer than ``rate + burst`` calls, and so does the whole component
against ``global_qps``. A :meth:`RedisLimiter.penalize` (the client calls it on every 400002)
stores the authorizer's slowed rate factor and the penalty time in the same hash, so one
process's 400002 slows that authorizer for every process; recovery is computed in the script
from Redis time, with the same knobs as the in-process limiter.

Keys (they hold app ids, never tokens) and their lifetime:

* ``{prefix}:{component_app_id}:rl:{app_id}``: hash ``t`` (TAT), ``l`` (factor after the last
  penalty), ``p`` (time of the last penalty), in microseconds of Redis time;
* ``{prefix}:{component_app_id}:rl:*global*``: the global TAT, only with ``global_qps``.

Each key expires (``PEXPIRE``) as soon as it holds nothing a missing key would not: an idle
authorizer leaves nothing behind. The limiter is built and tested for one Redis server (with
replicas or Sentinel as you like); on Redis Cluster the two keys of one script must share a
slot, which a hash tag in the prefix (``prefix="{kuaishou_mp}"``) would ensure.

Timing across processes: the script answers "wait ``w`` from my ``TIME``"; a caller maps Redis
time to its own monotonic clock (by the fastest reply it has seen, so a slow reply does not
make it late) and sleeps until its slot. Calls from different processes still reach the
platform with some jitter (scheduling on a busy host, the network); without a margin, a call
that left late and the one ``rate`` slots after it that left on time can land in one platform
window and earn a 400002. So the script spaces calls by ``(1 + safety_margin) / rate``: the
rate holds over windows of ``1 + safety_margin`` seconds, i.e. arrivals may jitter by
``safety_margin`` seconds. The default, 0.05 (50 ms, 5 % of throughput), is sized in the Redis
recipe of the documentation, from measurements with four workers on a loaded two-core host.

The component-wide rate a client learns from the platform's throttling is shared the same way
(:attr:`RedisLimiter.shared_learned_rate`, key ``{prefix}:{component_app_id}:rl:*learned*``):
every process paces against one learned rate, on Redis time.

When Redis fails
----------------
Every Redis round trip is bounded by ``timeout`` (default 0.5 s); an error or a timeout applies
the ``fallback`` policy, logs one warning on the ``"kuaishou_mp"`` logger for the outage, and
Redis is tried again at most every ``probe_interval`` seconds (default 5) by a single call;
the first answer ends the outage (logged at INFO). Policies:

* ``"local"`` (default): each process limits itself with an in-process limiter built from the
  same ``RateLimit`` (or ``local_rate_limit``). A bulk run never crashes or hangs; the platform
  may see up to one rate per process meanwhile (pass ``local_rate_limit`` with the rate divided
  by your process count to avoid that), and the adaptive slow-down absorbs the 400002s.
* ``"fail"``: :meth:`~RedisLimiter.acquire` raises :class:`LimiterUnavailableError` (a
  :class:`~kuaishou_mp.KuaishouError`; bulk runs record it as a failed result).
* ``"allow"``: calls go unlimited until Redis answers again.

Around a switch (Redis to local or back) calls already waiting keep their slot from the other
side, so a window straddling the switch may briefly hold more than ``rate + burst`` calls.

Running one job over many machines (sharding, sizing, what to watch) is the Redis recipe in the
documentation ("One job over many machines").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from ._rate_params import rate_params
from ._redis_learned import SharedRate
from ._redis_limiter_lua import limiter_script
from ._redis_limiter_stats import RedisLimiterStats
from ._redis_support import bounded, connect, redis_errors
from ._validate import instance, number, one_of, text
from .errors import LimiterUnavailableError
from .ratelimit import InProcessLimiter, RateLimit

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["Fallback", "LimiterUnavailableError", "RedisLimiter", "RedisLimiterStats"]

logger = logging.getLogger("kuaishou_mp")

Fallback = Literal["local", "fail", "allow"]
"""What :class:`RedisLimiter` does while Redis is unreachable: see the module docs."""

_FALLBACKS: Final = ("local", "fail", "allow")
# Seconds per second by which the Redis-to-local clock offset estimate is let go stale: above
# the 500 ppm an NTP daemon may slew either clock by.
_OFFSET_AGING: Final = 0.001
_REDIS_ERRORS: Final = redis_errors()


class RedisLimiter:
    """A :class:`~kuaishou_mp.Limiter` whose state lives in Redis, shared by all processes.

    Same semantics as :class:`~kuaishou_mp.InProcessLimiter` (GCRA per authorizer plus an
    optional global limit, adaptive slow-down and recovery), but every process and machine using
    the same Redis, ``component_app_id`` and ``prefix`` shares the limits. One ``EVALSHA`` per
    acquire; see the module documentation for the algorithm, the keys and the failure policy.

    Args:
        client: A ``redis.asyncio.Redis``. Set a short ``socket_timeout`` on it; every round
            trip is bounded by ``timeout`` anyway. It is not closed by :meth:`aclose` unless
            ``owns_client`` (as with :meth:`from_url`).
        rate_limit: The limits; every process sharing the keys must use the same one.
        component_app_id: Your third-party application's app id (part of every key).
        prefix: First part of every key. Default ``"kuaishou_mp"``.
        fallback: ``"local"`` (default), ``"fail"`` or ``"allow"``: what to do while Redis
            fails; see :data:`Fallback`.
        timeout: Seconds a Redis round trip may take before it counts as a failure.
        probe_interval: Seconds between attempts to use Redis again during an outage.
        safety_margin: Fraction (seconds per one-second window) by which calls are spaced
            further apart than the rate, to absorb arrival jitter between processes.
            Default 0.05. ``0`` enforces the exact rate at the limiter.
        local_rate_limit: The ``RateLimit`` of the in-process fallback limiter (policy
            ``"local"``); default ``rate_limit``.
        owns_client: Close ``client`` in :meth:`aclose`.

    Raises:
        InvalidInputError: ``fallback`` is not one of the three policies, ``component_app_id`` or
            ``prefix`` is empty, or a duration or the margin is out of range.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        rate_limit: RateLimit,
        *,
        component_app_id: str,
        prefix: str = "kuaishou_mp",
        fallback: Fallback = "local",
        timeout: float = 0.5,
        probe_interval: float = 5.0,
        safety_margin: float = 0.05,
        local_rate_limit: RateLimit | None = None,
        owns_client: bool = False,
    ) -> None:
        one_of("fallback", fallback, _FALLBACKS)
        text("component_app_id", component_app_id)
        text("prefix", prefix)
        instance("rate_limit", rate_limit, RateLimit)
        number("timeout", timeout)
        number("probe_interval", probe_interval)
        number("safety_margin", safety_margin, low_ok=True)
        self._timeout = float(timeout)
        self._probe_interval = float(probe_interval)
        margin = 1.0 + float(safety_margin)
        self._client = client
        self._owns_client = owns_client
        self._fallback: Fallback = fallback
        self._key_prefix = f"{prefix}:{component_app_id}:rl:"
        self._global_key = self._key_prefix + "*global*"  # no app id has a "*"
        params, g_qps = rate_params(rate_limit, margin=margin), rate_limit.global_qps
        self._rate = params.rate
        self._limited = params.interval > 0 or params.global_interval > 0
        self._adaptive = params.adaptive
        self._script = client.register_script(limiter_script(params))
        learned = self._key_prefix + "*learned*"
        self.shared_learned_rate = SharedRate(
            client, learned, cap=g_qps, timeout=self._timeout, probe_interval=self._probe_interval
        )
        """The learned component-wide rate every client using this limiter paces against."""

        self._local: InProcessLimiter | None = None
        if fallback == "local":
            self._local = (local_rate_limit or rate_limit).build()
        # Outage state. A call's result changes the state only if no other call changed it
        # since that call started (``_generation``), so a late answer cannot flip it back.
        self._up = True
        self._generation = 0
        self._next_probe = 0.0
        self._closed = False
        # Local monotonic time minus Redis time, plus the fastest reply delay (see _wake_time).
        self._offset = math.inf
        self._offset_at = 0.0
        # Counters for :attr:`stats`.
        self._acquires = self._redis_acquires = self._fallback_acquires = self._waits = 0
        self._redis_calls = self._redis_errors = self._outages = 0
        self._wait_seconds = self._max_wait = self._redis_seconds = self._max_redis_seconds = 0.0

    @classmethod
    def from_url(
        cls,
        url: str,
        rate_limit: RateLimit,
        *,
        component_app_id: str,
        prefix: str = "kuaishou_mp",
        fallback: Fallback = "local",
        timeout: float = 0.5,
        probe_interval: float = 5.0,
        safety_margin: float = 0.05,
        local_rate_limit: RateLimit | None = None,
        **redis_options: Any,
    ) -> RedisLimiter:
        """Connect to Redis by URL; the limiter owns the connection and closes it in :meth:`aclose`.

        No connection is made until the first acquire, so this is safe outside a running loop.
        The connection pool gets socket and connect timeouts of ``timeout`` seconds and one
        immediate retry of a dropped connection (redis-py's default would retry for seconds).

        Args:
            url: ``redis://[[user]:[password]@]host:port/db``, ``rediss://...`` or ``unix://...``.
            rate_limit: The limits; see :class:`RedisLimiter`.
            component_app_id: Your third-party application's app id.
            prefix: First part of every key.
            fallback: The policy while Redis fails: ``"local"``, ``"fail"`` or ``"allow"``.
            timeout: Seconds a Redis round trip may take.
            probe_interval: Seconds between attempts to use Redis again during an outage.
            safety_margin: See :class:`RedisLimiter`.
            local_rate_limit: See :class:`RedisLimiter`.
            **redis_options: Passed to ``redis.asyncio.Redis.from_url`` (override the above).

        Returns:
            A new :class:`RedisLimiter`.

        Raises:
            InvalidInputError: Malformed URL or arguments.
        """
        # Connections are made on first use: if the constructor refuses its arguments, the
        # unused client holds nothing to close.
        return cls(
            connect(url, timeout=timeout, retry_once=True, **redis_options),
            rate_limit,
            component_app_id=component_app_id,
            prefix=prefix,
            fallback=fallback,
            timeout=timeout,
            probe_interval=probe_interval,
            safety_margin=safety_margin,
            local_rate_limit=local_rate_limit,
            owns_client=True,
        )

    # -- the Limiter protocol -------------------------------------------------------------------

    async def acquire(self, key: str) -> None:
        """Wait until a call for ``key`` may go, per authorizer and globally, across processes.

        One script call reserves the slot in Redis and returns the wait; the caller then sleeps
        once. While Redis is unavailable, the ``fallback`` policy decides.

        Args:
            key: The authorizer's app id (stored in a Redis key name; never pass a token).

        Raises:
            LimiterUnavailableError: Redis is unavailable and the policy is ``"fail"``.
            asyncio.CancelledError: The task was cancelled; a slot already reserved in Redis is
                not given back (the limit errs on the safe side).
        """
        self._acquires += 1
        if not self._limited:
            return
        if self._up or self._probe_due():
            generation = self._generation
            try:
                reply, sent, received = await self._call(("a",), key, generation)
            except _REDIS_ERRORS:
                pass  # the state is updated and logged; the policy decides below
            else:
                self._redis_acquires += 1
                now_us, wait_us = reply
                if wait_us > 0:
                    await self._sleep_until(self._wake_time(now_us, wait_us, sent, received))
                return
        self._fallback_acquires += 1
        if self._fallback == "allow":
            return
        if self._local is None:
            raise LimiterUnavailableError(
                "the Redis rate limiter is unavailable and its policy is fallback='fail'",
                app_id=key,
            )
        started = time.monotonic()
        await self._local.acquire(key)
        waited = time.monotonic() - started
        if waited > 0.0005:
            self._count_wait(waited)

    async def penalize(self, key: str) -> None:
        """Slow ``key`` down for every process after the platform answered 400002 for it.

        Stores the slowed factor and the penalty time in Redis (penalties within one current
        interval of the previous one count once, as they come from calls already in flight);
        the acquire script recovers the rate gradually from Redis time. With policy
        ``"local"`` the fallback limiter is penalized too, so an outage starts from the slowed
        rate. Never raises for Redis failures: they only switch to the fallback policy. A no-op
        when ``adaptive`` is off or per-authorizer limiting is disabled.

        Args:
            key: The authorizer's app id.
        """
        if not self._adaptive:
            return
        if self._local is not None:
            await self._local.penalize(key)
        if self._up or self._probe_due():
            with contextlib.suppress(*_REDIS_ERRORS):
                await self._call(("p",), key, self._generation)

    async def aclose(self) -> None:
        """Close the Redis connection if the limiter created it (:meth:`from_url`). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._local is not None:
            await self._local.aclose()
        if self._owns_client:
            await self._client.aclose()

    # -- observability --------------------------------------------------------------------------

    async def current_rate(self, key: str) -> float | None:
        """The rate ``key`` is held to now, after shared slow-down and recovery, read from Redis.

        Args:
            key: The authorizer's app id.

        Returns:
            Calls per second (without the safety margin), or ``None`` when per-authorizer
            limiting is disabled.

        Raises:
            LimiterUnavailableError: Redis did not answer (whatever the policy).
        """
        if self._rate is None:
            return None
        try:
            factor, _, _ = await self._call(("r",), key, self._generation)
        except _REDIS_ERRORS as exc:
            raise LimiterUnavailableError(
                f"Redis did not answer: {type(exc).__name__}", app_id=key
            ) from exc
        return self._rate * float(factor)

    @property
    def stats(self) -> RedisLimiterStats:
        """Counters for monitoring: waits, Redis latency, errors and outages."""
        return RedisLimiterStats(
            acquires=self._acquires,
            redis_acquires=self._redis_acquires,
            fallback_acquires=self._fallback_acquires,
            waits=self._waits,
            wait_seconds=self._wait_seconds,
            max_wait=self._max_wait,
            redis_calls=self._redis_calls,
            redis_seconds=self._redis_seconds,
            max_redis_seconds=self._max_redis_seconds,
            redis_errors=self._redis_errors,
            outages=self._outages,
            using_redis=self._up,
        )

    @property
    def using_redis(self) -> bool:
        """``False`` while Redis is unavailable and the fallback policy applies."""
        return self._up

    @property
    def fallback(self) -> Fallback:
        """The policy applied while Redis is unavailable."""
        return self._fallback

    def redis_key(self, app_id: str) -> str:
        """The Redis key holding ``app_id``'s limiter state.

        Args:
            app_id: The authorizer's app id.

        Returns:
            ``{prefix}:{component_app_id}:rl:{app_id}``.
        """
        return self._key_prefix + app_id

    @property
    def global_key(self) -> str:
        """The Redis key of the global limit: ``{prefix}:{component_app_id}:rl:*global*``."""
        return self._global_key

    def __repr__(self) -> str:
        state = "redis" if self._up else f"down, fallback={self._fallback}"
        return f"<RedisLimiter {self._key_prefix}* {state}>"

    # -- internals ------------------------------------------------------------------------------

    def _probe_due(self) -> bool:
        # One caller per probe_interval tries Redis during an outage; the others do not wait.
        now = time.monotonic()
        if now < self._next_probe:
            return False
        self._next_probe = now + self._probe_interval
        return True

    async def _call(
        self, args: Sequence[str], key: str, generation: int
    ) -> tuple[Any, float, float]:
        """Run the script; returns its reply and the local times it was sent and received."""
        started = time.monotonic()
        try:
            result = await bounded(
                self._script(keys=(self._key_prefix + key, self._global_key), args=args),
                self._timeout,
            )
        except _REDIS_ERRORS as exc:
            self._redis_errors += 1
            if self._up and generation == self._generation:
                self._went_down(exc)
            raise
        received = time.monotonic()
        elapsed = received - started
        self._redis_calls += 1
        self._redis_seconds += elapsed
        if elapsed > self._max_redis_seconds:
            self._max_redis_seconds = elapsed
        if not self._up and generation == self._generation:
            self._up = True
            self._generation += 1
            logger.info("Redis rate limiter is back: limits are shared through Redis again")
        return result, started, received

    def _wake_time(self, now_us: int, wait_us: int, sent: float, received: float) -> float:
        """The local monotonic time at which the slot the script reserved begins.

        ``received + wait`` would add this reply's delay to the wait, and replies are delayed
        unevenly (a new connection, a busy event loop): callers whose slots are one interval
        apart would go unevenly spaced. Instead the Redis clock is mapped to the local one by
        the smallest ``received - redis_now`` seen (the offset plus the fastest reply), aged
        by 1 ms/s so that drift and clock steps heal, and clamped to what this reply allows:
        the script ran between ``sent`` and ``received``.
        """
        redis_now = now_us / 1_000_000.0
        aged = self._offset + (received - self._offset_at) * _OFFSET_AGING
        self._offset = min(aged, received - redis_now)
        self._offset_at = received
        wait = wait_us / 1_000_000.0
        return min(max(redis_now + wait + self._offset, sent + wait), received + wait)

    def _went_down(self, exc: BaseException) -> None:
        self._up = False
        self._generation += 1
        self._outages += 1
        self._next_probe = time.monotonic() + self._probe_interval
        action = {
            "local": "limiting each process on its own",
            "fail": "failing calls with LimiterUnavailableError",
            "allow": "calls are NOT rate limited",
        }[self._fallback]
        detail = str(exc)[:200]
        logger.warning(
            "Redis rate limiter unavailable (%s%s); %s until Redis answers again "
            "(retried every %gs)",
            type(exc).__name__,
            f": {detail}" if detail else "",
            action,
            self._probe_interval,
        )

    async def _sleep_until(self, deadline: float) -> None:
        seconds = deadline - time.monotonic()
        if seconds > 0:
            self._count_wait(seconds)
            await asyncio.sleep(seconds)

    def _count_wait(self, seconds: float) -> None:
        self._waits += 1
        self._wait_seconds += seconds
        if seconds > self._max_wait:
            self._max_wait = seconds
