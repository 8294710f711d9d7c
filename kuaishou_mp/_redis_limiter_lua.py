"""The Redis limiter's Lua script: GCRA per authorizer and globally, adaptive slow-down, read-back.

The algorithm is the in-process limiter's (``ratelimit.py``); its constants come from the same
derivation (``_rate_params.py``), written into the script's first line.
"""

from __future__ import annotations

import math
from typing import Final

from ._rate_params import RateParams
from .errors import InvalidInputError

__all__ = ["limiter_script"]

# One script for the three operations, so one SHA is loaded per configuration: the limits
# are constants written into its first line (limiter_script), so a call carries two
# keys and the operation only (encoding ten numbers per call cost more than running the
# script). Times are microseconds of Redis time, stored as integers ('%.0f': Lua's tostring
# would print 1.7e15 with 14 digits). KEYS[1] the authorizer's hash, KEYS[2] the global key.
# ARGV[1] the operation: 'a' acquire, 'p' penalize, 'r' read the rate factor. Constants:
# interval and tau per authorizer (interval 0 = no per-authorizer limit), global interval
# and tau (0 = none), slow_factor, min_factor, recovery_step, recovery_after, forget_after.
_LUA_CONSTANTS: Final = "local T, tau, gT, gtau, slow, low_floor, step, rec, forget = "
_LUA_BODY: Final = """
if redis.replicate_commands then redis.replicate_commands() end -- no-op on Redis >= 7
local op = ARGV[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local function int(x) return string.format('%.0f', math.ceil(x)) end
local function ms(us) return math.ceil(us / 1000) + 1 end

local key = KEYS[1]
local tat, low, pen = now, 1, nil
local stale = false
if T > 0 then
  local h = redis.call('HMGET', key, 't', 'l', 'p')
  tat = tonumber(h[1]) or now
  low = tonumber(h[2]) or 1
  pen = tonumber(h[3])
end
local factor = 1
if pen then
  local quiet = math.max(now - pen, 0)
  if quiet >= forget then
    pen = nil
    stale = true
  else
    factor = math.min(1, low * step ^ math.floor(quiet / rec))
  end
end

if op == 'a' then
  local slot = now
  if T > 0 then slot = math.max(now, tat - tau) end
  if gT > 0 then
    local g = tonumber(redis.call('GET', KEYS[2])) or now
    slot = math.max(slot, g - gtau)
    local gnew = math.max(g, slot) + gT
    redis.call('SET', KEYS[2], int(gnew), 'PX', ms(gnew - now))
  end
  if T > 0 then
    local new = math.max(tat, slot) + T / factor
    redis.call('HSET', key, 't', int(new))
    local live = new - now
    if pen then
      live = math.max(live, pen + forget - now)
    elseif stale then
      redis.call('HDEL', key, 'l', 'p')
    end
    redis.call('PEXPIRE', key, ms(live))
  end
  return {now, math.ceil(slot - now)}
elseif op == 'p' then
  if T == 0 then return 0 end
  if pen and now - pen < T / factor then return 0 end
  factor = math.max(factor * slow, low_floor)
  local new = math.max(tat, now + tau) + T / factor
  redis.call('HSET', key, 't', int(new), 'l', string.format('%.17g', factor), 'p', int(now))
  redis.call('PEXPIRE', key, ms(math.max(new - now, forget)))
  return 1
end
return string.format('%.17g', factor)
"""


def _us(seconds: float) -> str:
    us = seconds * 1_000_000.0
    if not math.isfinite(us):
        raise InvalidInputError(
            f"a rate too small for the Redis limiter: interval of {seconds!r} s"
        )
    return repr(us)


def limiter_script(p: RateParams) -> str:
    """The script text for ``p``: its constants, in microseconds of Redis time, then the body.

    Raises:
        InvalidInputError: An interval does not fit in a float once in microseconds.
    """
    constants = (
        _us(p.interval),
        _us(p.tau),
        _us(p.global_interval),
        _us(p.global_tau),
        repr(p.slow_factor),
        repr(p.min_factor),
        repr(p.recovery_step),
        _us(p.recovery_after),
        _us(p.forget_after),
    )
    return _LUA_CONSTANTS + ", ".join(constants) + _LUA_BODY
