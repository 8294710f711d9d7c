"""The component-wide learned rate, kept in Redis so that every process paces against one rate.

Each process still judges its own throttles (``_throttle_detector.py``) and measures what got
through its own window (``_component_rate.py``); this module holds what they share, in one
Redis hash per component, on Redis time:

* ``w``, ``k``, ``f``: CUBIC's last max (calls/s), its recovery time ``K`` (s) and the time of
  the last decrease (µs); absent until some process first reports a throttle (then the key
  lives 60 s past its last use; before, two windows: it holds nothing more);
* ``t``: the theoretical arrival time (µs) of the next send at the learned rate, a GCRA with
  no burst shared by every process;
* ``s``, ``c``, ``p``, ``n``, ``g``, ``q``: the start of the current one-second window, the
  sends whose slots fall in that window, in the one before and beyond it (a send is booked
  ahead, and the platform sees it at its slot), and the answers that got through in the
  current and the previous window (reported with each process's next send or throttle), for
  sliding estimates of what the whole component sends and gets through.

A send (:meth:`SharedRate.pace`) takes the next slot at the rate the curve gives now; a
throttle (:meth:`SharedRate.throttled`) lowers the rate as the in-process calculator does,
from what the whole component got through in its last window. Every
round trip is bounded; a Redis failure returns ``None`` and the caller paces in process.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Final

from ._component_rate import BETA, HOLDOFF, MEASURED_BETA, MIN_RATE, SAME_LIMIT, SCALE
from ._redis_support import bounded, redis_errors

__all__ = ["SharedRate"]

logger = logging.getLogger("kuaishou_mp")

_REDIS_ERRORS: Final = redis_errors()
# A learned state idle this long is dropped: by then the curve is far above any rate it
# learned, as good as unlimited, which is where a missing key starts.
_TTL_MS: Final = 60_000

# KEYS[1] the hash; ARGV[1] 'p' (pace: ARGV[2] the answers that got through since the
# process's last report), 'r' (report them alone) or 't' (throttle: ARGV[2] µs until its window
# has room, ARGV[3] the answers that got through since its last report). Constants first.
_LUA_CONSTANTS: Final = (
    "local beta, measured_beta, same_limit, scale, min_rate, cap, holdoff, ttl = "
)
_LUA_BODY: Final = """
local key = KEYS[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local h = redis.call('HMGET', key, 'w', 'k', 'f', 't', 's', 'c', 'p', 'g', 'q', 'n')
local w, k, f, tat = tonumber(h[1]), tonumber(h[2]), tonumber(h[3]), tonumber(h[4]) or now
local s = tonumber(h[5]) or now
local c, p = tonumber(h[6]) or 0, tonumber(h[7]) or 0
local g, q = tonumber(h[8]) or 0, tonumber(h[9]) or 0
local n = tonumber(h[10]) or 0
if now - s >= 1000000 then
  -- n holds the sends whose slots were beyond the window that ended: the next one's
  if now - s >= 3000000 then p, q, c = 0, 0, 0
  elseif now - s >= 2000000 then p, q, c = n, 0, 0
  else p, q, c = c, g, n end
  g, n = 0, 0
  s = s + 1000000 * math.floor((now - s) / 1000000)
end
local function rate_now()
  local d = (now - f) / 1000000 - k
  local r = scale * d * d * d + w
  if r > cap then r = cap end
  if r < min_rate then r = min_rate end
  return r
end
local function fmt(x) return string.format('%.17g', x) end
local function save_counts()
  redis.call('HSET', key, 's', fmt(s), 'c', c, 'p', p, 'g', g, 'q', q, 'n', n)
end
if ARGV[1] == 'p' then
  g = g + tonumber(ARGV[2])
  local wait, rate, slot = 0, '', now
  -- Nothing learned: the counts matter for two windows at most.
  local live = math.ceil((s + 2000000 - now) / 1000)
  if w then
    local r = rate_now()
    slot = math.max(now, tat)
    wait, rate = math.ceil(slot - now), fmt(r)
    redis.call('HSET', key, 't', fmt(slot + 1000000 / r))
    live = ttl
  end
  -- A send is counted in the window of its slot, when the platform sees it, not when it
  -- was booked: booked a second ahead, the sends of a run's tail would be missing.
  if slot < s + 1000000 then c = c + 1 else n = n + 1 end
  save_counts()
  redis.call('PEXPIRE', key, live)
  return {wait, rate}
end
if ARGV[1] == 'r' then
  -- answers that got through, reported without a send (a process that stops sending)
  g = g + tonumber(ARGV[2])
  save_counts()
  redis.call('PEXPIRE', key, w and ttl or math.ceil((s + 2000000 - now) / 1000))
  return {0, w and fmt(rate_now()) or ''}
end
-- A throttle: the window is full, so what the component got through in it is its capacity.
g = g + tonumber(ARGV[3])
save_counts()
local frac = 1 - (now - s) / 1000000
-- slots of this window still ahead of now: booked, not yet sent
local ahead = 0
if w and tat > now then ahead = (math.min(tat, s + 1000000) - now) * rate_now() / 1000000 end
local est = math.min(q * frac + g, math.max(0, p * frac + c - ahead))
if f and now - f < holdoff then
  if est > w then
    -- the same decrease: K grows as the cube root of w
    k = k * (est / w) ^ (1 / 3)
    w = est
    redis.call('HSET', key, 'w', fmt(w), 'k', fmt(k))
  end
  return {0, fmt(rate_now())}
end
-- A first burst, or a probe beyond the last capacity that got it through again: the rate
-- stays at the capacity measured. Anything else was too high: beta.
local first = not w
local decrease, failed = beta, est
if first then
  if est > 0 then decrease = measured_beta end
else
  local r = rate_now()
  if r > w and est >= same_limit * w then decrease = measured_beta end
  failed = math.min(est, r)
end
if failed < min_rate / beta then failed = min_rate / beta end
w = failed
k = (w * (1 - decrease) / scale) ^ (1 / 3)
f = now
tat = math.max(tat, now + tonumber(ARGV[2]))
redis.call('HSET', key, 'w', fmt(w), 'k', fmt(k), 'f', fmt(f), 't', fmt(tat))
redis.call('PEXPIRE', key, ttl)
return {1, fmt(rate_now())}
"""


class SharedRate:
    """One component's learned rate in Redis (see the module docs); built by ``RedisLimiter``."""

    __slots__ = ("_client", "_key", "_probe_interval", "_retry_at", "_script", "_timeout")

    def __init__(
        self,
        client: Any,
        key: str,
        *,
        cap: float | None,
        timeout: float,
        probe_interval: float = 5.0,
    ) -> None:
        constants = (
            BETA,
            MEASURED_BETA,
            SAME_LIMIT,
            SCALE,
            MIN_RATE,
            1e12 if cap is None else cap,
            HOLDOFF * 1e6,
            _TTL_MS,
        )
        text = _LUA_CONSTANTS + ", ".join(repr(float(x)) for x in constants) + _LUA_BODY
        self._client = client
        self._key = key
        self._script = client.register_script(text)
        self._timeout = timeout
        # After a failure Redis is left alone for a while, so that a hung Redis costs one
        # timeout per probe interval, not one per call.
        self._probe_interval = probe_interval
        self._retry_at = -math.inf

    async def _run(self, *args: str) -> tuple[float, float | None] | None:
        if time.monotonic() < self._retry_at:
            return None
        try:
            first, rate = await bounded(self._script(keys=[self._key], args=args), self._timeout)
        except _REDIS_ERRORS as exc:
            self._retry_at = time.monotonic() + self._probe_interval
            logger.debug("shared learned rate unavailable: %s", type(exc).__name__)
            return None
        text = rate.decode() if isinstance(rate, bytes) else str(rate)
        return float(first), (float(text) if text else None)

    async def pace(self, got_through: int = 0) -> tuple[float, float | None] | None:
        """Take the next send slot at the shared rate.

        Args:
            got_through: Answers that were not throttles since this process's last pace.

        Returns:
            Seconds to wait for the slot and the shared rate (``None`` while nothing was
            learned), or ``None`` when Redis did not answer.
        """
        answer = await self._run("p", str(got_through))
        if answer is None:
            return None
        wait_us, rate = answer
        return wait_us / 1e6, rate

    async def report(self, got_through: int) -> None:
        """Report answers that got through without a send (a process that stops sending:
        otherwise the next pace carries them, and the component's window would miss them).

        Args:
            got_through: Answers that were not throttles since this process's last report.
        """
        if got_through > 0:
            await self._run("r", str(got_through))

    async def throttled(self, resume_in: float, got_through: int = 0) -> float | None:
        """Report a component-wide throttle; returns the shared rate after it (``None`` when
        Redis did not answer).

        Args:
            resume_in: Seconds until the reporter's full window has room again.
            got_through: Answers that were not throttles since this process's last report
                (at a run's tail no pace would carry them: the window would look emptier
                than the platform's).
        """
        answer = await self._run("t", repr(max(0.0, resume_in) * 1e6), str(got_through))
        return None if answer is None else answer[1]
