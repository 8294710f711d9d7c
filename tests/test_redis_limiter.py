"""The Redis-backed shared limiter, against a real redis-server (see ``redis_support``)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio
from redis_support import (
    BlackHole,
    RedisProcess,
    free_port,
    max_in_window,
    redis_server_binary,
    skip_or_fail,
    unique_prefix,
)

from kuaishou_mp import Authorizer, Client, KuaishouError, RateLimit, RetryPolicy
from kuaishou_mp.redis import LimiterUnavailableError, RedisLimiter
from kuaishou_mp.testing import FakeKuaishou

if TYPE_CHECKING:
    from conftest import MakeClient, MakeFake

pytestmark = pytest.mark.redis

CID = "ks_component_test"
SUPPORT = Path(__file__).with_name("redis_support.py")


@pytest.fixture
def redis_binary() -> str:
    """A redis-server binary for tests that stop and restart their own server."""
    binary = redis_server_binary()
    if binary is None:
        skip_or_fail("redis-server is not on PATH and KUAISHOU_TEST_REDIS_SERVER is unset")
    assert binary is not None
    return binary


def make(url: str, prefix: str, rate_limit: RateLimit, **kwargs: Any) -> RedisLimiter:
    return RedisLimiter.from_url(url, rate_limit, component_app_id=CID, prefix=prefix, **kwargs)


async def evalsha_calls(client: redis.asyncio.Redis) -> tuple[int, int]:
    stats = await client.info("commandstats")
    sha = stats.get("cmdstat_evalsha", {}).get("calls", 0)
    plain = stats.get("cmdstat_eval", {}).get("calls", 0)
    return int(sha), int(plain)


def limiter_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "kuaishou_mp" and r.levelno == logging.WARNING and "Redis" in r.getMessage()
    ]


# -- exactness and cost ---------------------------------------------------------------------------


async def test_concurrent_acquirers_never_exceed_rate_plus_burst(redis_url: str) -> None:
    rate, burst, n = 20.0, 3, 34
    prefix = unique_prefix()
    rl = RateLimit(per_authorizer_qps=rate, burst=burst)
    # Two limiters with their own connection pools stand in for two processes.
    clients = [redis.asyncio.Redis.from_url(redis_url, socket_timeout=5) for _ in range(2)]
    a, b = (
        RedisLimiter(c, rl, component_app_id=CID, prefix=prefix, owns_client=True) for c in clients
    )
    admitted: list[float] = []

    async def one(limiter: RedisLimiter) -> None:
        await limiter.acquire("ks_hot")
        admitted.append(time.monotonic())

    try:
        # Connections (one per concurrent caller) and the script load out of the measurement.
        await asyncio.gather(*(c.ping() for c in clients for _ in range(n // 2)))
        await a.acquire("ks_warmup")
        await b.acquire("ks_warmup2")
        started = time.monotonic()
        await asyncio.gather(*(one(a if i % 2 else b) for i in range(n)))
    finally:
        await a.aclose()
        await b.aclose()
    assert len(admitted) == n
    admitted.sort()
    # The burst goes at once (without it the third call would come two intervals after the
    # first), then one call per 1/rate: the limit is reached, not avoided...
    assert admitted[burst - 1] - admitted[0] < (burst - 1) / rate
    assert admitted[-1] - started >= (n - burst) / rate
    # ... and never exceeded: fewer than rate + burst calls in any half-open 1 s window.
    assert max_in_window(admitted) <= rate + burst - 1
    assert a.stats.redis_acquires + b.stats.redis_acquires == n + 2
    assert a.stats.fallback_acquires == b.stats.fallback_acquires == 0


async def test_one_script_call_per_acquire_and_callers_sleep(
    redis_url: str, rdb: redis.asyncio.Redis
) -> None:
    rate, n = 20.0, 20
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=5)
    limiter = RedisLimiter(
        client,
        RateLimit(per_authorizer_qps=rate, burst=1),
        component_app_id=CID,
        prefix=unique_prefix(),
        owns_client=True,
    )
    try:
        await asyncio.gather(*(client.ping() for _ in range(n)))  # open the connections
        await limiter.acquire("ks_warmup")  # loads the script (EVALSHA, NOSCRIPT, SCRIPT LOAD)
        sha_before, eval_before = await evalsha_calls(rdb)
        started = time.monotonic()
        await asyncio.gather(*(limiter.acquire("ks_one") for _ in range(n)))
        elapsed = time.monotonic() - started
        sha_after, eval_after = await evalsha_calls(rdb)
    finally:
        await limiter.aclose()
    # n calls spaced 1/rate apart took (n-1)/rate seconds, with exactly one EVALSHA each:
    # the waits came from the script and were slept, not polled.
    assert elapsed >= (n - 1) / rate
    assert sha_after - sha_before == n
    assert eval_after == eval_before
    stats = limiter.stats
    assert stats.redis_calls == n + 1
    # The k-th caller slept about k intervals (less the time its reply took to arrive).
    assert stats.waits >= n // 2
    assert stats.wait_seconds >= 0.8 * sum(range(n)) * 1.05 / rate


# -- keys ----------------------------------------------------------------------------------------


async def test_keys_are_namespaced_expire_and_hold_no_token(
    make_fake: MakeFake, redis_url: str, rdb: redis.asyncio.Redis, make_client: MakeClient
) -> None:
    prefix = unique_prefix()
    rl = RateLimit(
        per_authorizer_qps=10,
        global_qps=50,
        recovery_after=0.1,
        min_factor=0.5,  # forgotten 4 recovery steps (0.4 s) after the last penalty
    )
    limiter = make(redis_url, prefix, rl)
    fake = await make_fake(component_app_id=CID)
    apps = fake.add_authorizers(2, prefix="ks_keys")
    async with make_client(fake, rate_limit=limiter) as client:
        for app in apps:
            await client.app_info(Authorizer(app.app_id, app.access_token))
        await limiter.penalize(apps[1].app_id)
        keys = sorted([k.decode() async for k in rdb.scan_iter(match=f"{prefix}:*")])
        namespace = f"{prefix}:{CID}:rl:"
        # *learned*: the component's sends and answers, for the shared learned rate. The
        # global key (~40 ms) and the unpenalized authorizer's (one interval) may already
        # have expired on a loaded machine; the penalized one and *learned* live longer.
        lasting = {namespace + "*learned*", namespace + apps[1].app_id}
        brief = {namespace + "*global*", namespace + apps[0].app_id}
        assert lasting <= set(keys) <= lasting | brief, keys
        assert limiter.redis_key(apps[0].app_id) == namespace + apps[0].app_id
        assert limiter.global_key == namespace + "*global*"
        tokens = [app.access_token for app in apps]
        for key in keys:
            ttl = await rdb.pttl(key)
            # -2: the key already expired since the scan (the global one lives ~40 ms, a
            # loaded machine can take longer than that); -1 (no expiry) always fails.
            # Nothing learned: the counts matter for two one-second windows at most.
            longest = 2000 if key.endswith("*learned*") else 500
            assert ttl == -2 or 0 < ttl <= longest, (key, ttl)
            if key.endswith("*global*"):
                stored = [await rdb.get(key) or b""]
            else:
                h = await rdb.hgetall(key)
                stored = [*h.keys(), *h.values()]
            for token in tokens:
                assert token not in key
                assert all(token.encode() not in v for v in stored)
        # The penalized key lives until its penalty is forgotten, the others one interval.
        assert await rdb.pttl(namespace + apps[1].app_id) > 300
        assert await rdb.pttl(namespace + apps[0].app_id) <= 110
        await asyncio.sleep(0.55)
        left = [k.decode() async for k in rdb.scan_iter(match=f"{prefix}:*")]
        assert left in ([], [namespace + "*learned*"])
        await asyncio.sleep(1.5)
        assert [k async for k in rdb.scan_iter(match=f"{prefix}:*")] == []


async def test_global_only_limit_and_no_limits(redis_url: str, rdb: redis.asyncio.Redis) -> None:
    prefix = unique_prefix()
    limiter = make(redis_url, prefix, RateLimit(per_authorizer_qps=None, global_qps=20))
    try:
        started = time.monotonic()
        for i in range(10):  # distinct authorizers, one global pace
            await limiter.acquire(f"ks_g{i}")
        elapsed = time.monotonic() - started
        await limiter.penalize("ks_g0")  # no per-authorizer limit: nothing to slow down
        assert await limiter.current_rate("ks_g0") is None
        keys = [k.decode() async for k in rdb.scan_iter(match=f"{prefix}:*")]
    finally:
        await limiter.aclose()
    assert elapsed >= 9 / 20
    assert keys == [limiter.global_key]
    assert limiter.fallback == "local"
    assert repr(limiter) == f"<RedisLimiter {prefix}:{CID}:rl:* redis>"

    # Nothing to limit: Redis is never contacted (here it does not even exist).
    unlimited = make(f"redis://127.0.0.1:{free_port()}/0", prefix, RateLimit(None))
    try:
        for _ in range(5):
            await unlimited.acquire("ks_u")
    finally:
        await unlimited.aclose()
    assert unlimited.stats.redis_errors == unlimited.stats.redis_calls == 0
    assert unlimited.using_redis


# -- shared adaptive slow-down -------------------------------------------------------------------


async def test_penalize_in_one_limiter_slows_the_others(redis_url: str) -> None:
    prefix = unique_prefix()
    rl = RateLimit(per_authorizer_qps=10, burst=1, recovery_after=0.4)
    a = make(redis_url, prefix, rl)
    b = make(redis_url, prefix, rl)

    async def gaps(limiter: RedisLimiter, key: str, n: int) -> list[float]:
        times = []
        for _ in range(n):
            await limiter.acquire(key)
            times.append(time.monotonic())
        return [t2 - t1 for t1, t2 in itertools.pairwise(times)]

    try:
        assert await b.current_rate("ks_p") == 10.0
        before = await gaps(b, "ks_p", 3)
        assert all(0.095 <= g <= 0.15 for g in before), before
        await a.penalize("ks_p")
        await a.penalize("ks_p")  # in flight with the first: counts once
        assert await b.current_rate("ks_p") == 5.0
        assert await b.current_rate("ks_other") == 10.0
        after = await gaps(b, "ks_p", 3)
        # Spacing can only grow under load, so the lower bounds are exact; the upper ones
        # leave room for a busy machine.
        assert all(g >= 0.19 for g in after), after
        assert sorted(after)[1] <= 0.3, after
        other = await gaps(b, "ks_other", 3)
        assert all(g >= 0.09 for g in other), other
        assert sorted(other)[1] < 0.17, other
    finally:
        await a.aclose()
        await b.aclose()


async def test_shared_penalty_recovers_on_redis_time(redis_url: str) -> None:
    prefix = unique_prefix()
    rl = RateLimit(per_authorizer_qps=10, recovery_after=0.3, min_factor=0.25)
    a = make(redis_url, prefix, rl)
    b = make(redis_url, prefix, rl)
    try:
        await a.penalize("ks_r")
        penalized = time.monotonic()
        assert await b.current_rate("ks_r") == 5.0
        # Quiet for one recovery_after: x1.25; the step comes from the script, not from B.
        await asyncio.sleep(0.35 - (time.monotonic() - penalized))
        assert await b.current_rate("ks_r") == pytest.approx(6.25)
        await b.penalize("ks_r")  # a new penalty starts from the recovered factor
        assert await a.current_rate("ks_r") == pytest.approx(3.125)
        # 1.6 s quiet = 5 steps (the penalty is forgotten only after 7 steps, 2.1 s).
        await asyncio.sleep(1.6)
        assert await a.current_rate("ks_r") == pytest.approx(3.125 * 1.25**5)
    finally:
        await a.aclose()
        await b.aclose()


# -- several OS processes against one fake platform ------------------------------------------------


async def test_processes_share_limits_through_redis(make_fake: MakeFake, redis_url: str) -> None:
    rate, processes, calls_per_app = 5, 4, 3
    fake = await make_fake(component_app_id=CID, qps_limit=rate)
    apps = fake.add_authorizers(3, prefix="ks_mp")
    warmups = fake.add_authorizers(processes, prefix="ks_warm")
    cfg = {
        "redis_url": redis_url,
        "base_url": fake.base_url,
        "component_app_id": CID,
        "prefix": unique_prefix(),
        "rate": rate,
        "burst": 1,
        # The fake shares this test's event loop and stamps arrivals when its handler runs,
        # so on a loaded CI machine its own scheduling adds jitter that a real platform's
        # would not: a wider margin than the default keeps the test about coordination.
        "safety_margin": 0.15,
        "calls_per_app": calls_per_app,
        "authorizers": [[a.app_id, a.access_token] for a in apps],
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(SUPPORT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    try:
        for proc, warm in zip(procs, warmups, strict=True):  # all warm and ready before any starts
            assert proc.stdin is not None
            own = {**cfg, "warmup": [warm.app_id, warm.access_token]}
            proc.stdin.write(json.dumps(own).encode() + b"\n")
            await proc.stdin.drain()
        for proc in procs:
            assert proc.stdout is not None
            assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        started = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = [await asyncio.wait_for(p.communicate(), 30) for p in procs]
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert [p.returncode for p in procs] == [0] * processes
    results = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    total_per_app = processes * calls_per_app
    assert [r["errors"] for r in results] == [[]] * processes
    assert sum(r["ok"] for r in results) == total_per_app * len(apps)
    # (+1 per worker: its warm-up call)
    assert sum(r["redis_acquires"] for r in results) == (total_per_app * len(apps) + processes)
    assert fake.counters["result:400002"] == 0
    for app in apps:
        assert len(fake.arrivals(app.app_id)) == total_per_app
        assert fake.max_in_window(app.app_id) <= rate  # < rate + burst
    # 12 calls per app at 5/s cannot take less than 11 intervals: the limit was binding.
    assert elapsed >= (total_per_app - 1) / rate


# -- Redis failures --------------------------------------------------------------------------------


async def test_redis_stopped_and_restarted_mid_run(
    redis_binary: str, caplog: pytest.LogCaptureFixture, make_client: MakeClient
) -> None:
    caplog.set_level(logging.INFO, logger="kuaishou_mp")
    server = RedisProcess(redis_binary)
    await server.start()
    inspect = redis.asyncio.Redis.from_url(server.url, socket_timeout=5)
    limiter = make(
        server.url,
        unique_prefix(),
        RateLimit(per_authorizer_qps=20, burst=1),
        timeout=0.3,
        probe_interval=0.25,
    )
    phases: dict[str, Any] = {}
    try:
        async with FakeKuaishou(component_app_id=CID) as fake:
            apps = fake.add_authorizers(3, prefix="ks_rs")
            rows = [Authorizer(a.app_id, a.access_token) for a in apps] * 45

            async def chaos() -> None:
                await asyncio.sleep(0.5)
                phases["before"] = limiter.stats
                await server.stop()
                await asyncio.sleep(0.7)
                phases["down"] = limiter.stats
                await server.start()

            async with make_client(fake, rate_limit=limiter, retry=RetryPolicy.none()) as client:
                chaos_task = asyncio.create_task(chaos())
                # Low concurrency spreads the acquires over the whole run (~2.2 s at 60/s).
                async with client.bulk_app_info(rows, concurrency=6) as run:
                    results = [r async for r in run]
                await chaos_task
                end_stats = limiter.stats
                sha_calls, _ = await evalsha_calls(inspect)
    finally:
        await inspect.aclose()
        await server.close()
    assert len(results) == len(rows)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    before, down = phases["before"], phases["down"]
    assert before.using_redis
    assert before.redis_acquires > 0
    assert before.fallback_acquires == 0
    assert not down.using_redis
    assert down.fallback_acquires > 0
    # Back on the restarted (empty) server: the last calls went through Redis again.
    assert end_stats.using_redis
    assert end_stats.redis_acquires > down.redis_acquires
    assert end_stats.outages == 1
    assert sha_calls > 0
    assert len(limiter_warnings(caplog)) == 1
    assert "limiting each process on its own" in limiter_warnings(caplog)[0].getMessage()
    assert any("back" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


async def test_fail_policy_raises_typed_error_and_probes_rarely(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    limiter = make(url, unique_prefix(), RateLimit(), fallback="fail", probe_interval=30)
    try:
        for _ in range(5):
            with pytest.raises(LimiterUnavailableError) as info:
                await limiter.acquire("ks_f")
            assert isinstance(info.value, KuaishouError)
            assert info.value.app_id == "ks_f"
        with pytest.raises(LimiterUnavailableError):
            await limiter.current_rate("ks_f")
        await limiter.penalize("ks_f")  # never raises: it would hide the 400002 it reports
    finally:
        await limiter.aclose()
    stats = limiter.stats
    assert stats.outages == 1
    # Only the first acquire tried Redis (then current_rate, which always asks).
    assert stats.redis_errors == 2
    assert stats.fallback_acquires == 5
    assert len(limiter_warnings(caplog)) == 1


async def test_fail_policy_through_the_client(make_fake: MakeFake, make_client: MakeClient) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    limiter = make(url, unique_prefix(), RateLimit(), fallback="fail")
    fake = await make_fake(component_app_id=CID)
    app = fake.add_authorizer("ks_cf")
    async with make_client(fake, rate_limit=limiter) as client:
        with pytest.raises(LimiterUnavailableError):
            await client.app_info(Authorizer(app.app_id, app.access_token))
    assert fake.counters["requests"] == 0  # refused before sending


async def test_allow_policy_admits_without_limits(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    limiter = make(url, unique_prefix(), RateLimit(per_authorizer_qps=1), fallback="allow")
    try:
        started = time.monotonic()
        for _ in range(20):
            await limiter.acquire("ks_allow")
        elapsed = time.monotonic() - started
    finally:
        await limiter.aclose()
    assert elapsed < 1.0  # 20 calls at 1/s would take 19 s if limited
    assert limiter.stats.fallback_acquires == 20
    assert len(limiter_warnings(caplog)) == 1
    assert "NOT rate limited" in limiter_warnings(caplog)[0].getMessage()


async def test_hung_redis_times_out_to_local_fallback(caplog: pytest.LogCaptureFixture) -> None:
    hole = BlackHole()
    url = await hole.start()
    limiter = make(url, unique_prefix(), RateLimit(per_authorizer_qps=10, burst=1), timeout=0.2)
    try:
        started = time.monotonic()
        await limiter.acquire("ks_h")  # times out after 0.2 s, then the local limiter admits
        first = time.monotonic() - started
        for _ in range(5):  # the local limiter still limits: 5 more at 10/s take ~0.5 s
            await limiter.acquire("ks_h")
        elapsed = time.monotonic() - started
    finally:
        await limiter.aclose()
        await hole.close()
    assert 0.15 <= first < 1.0
    assert 0.45 <= elapsed - first < 1.0
    assert not limiter.using_redis
    assert hole.connections == 1  # no probe within probe_interval (5 s)
    assert len(limiter_warnings(caplog)) == 1
    assert "TimeoutError" in limiter_warnings(caplog)[0].getMessage()


# -- construction and packaging --------------------------------------------------------------------


async def test_aclose_closes_an_owned_connection(redis_url: str, rdb: redis.asyncio.Redis) -> None:
    name = f"kmp-{unique_prefix()}"

    async def ours() -> int:
        clients = await rdb.client_list()
        return sum(1 for c in clients if c.get("name") == name)

    async def gone() -> int:
        # The server drops a closed connection from CLIENT LIST shortly after, not at once.
        for _ in range(50):
            if (count := await ours()) == 0:
                break
            await asyncio.sleep(0.02)
        return count

    limiter = make(redis_url, unique_prefix(), RateLimit(), client_name=name)
    async with Client(CID, rate_limit=limiter):
        await limiter.acquire("ks_close")
        assert await ours() == 1
    assert await gone() == 0
    await limiter.aclose()  # idempotent

    borrowed = redis.asyncio.Redis.from_url(redis_url, client_name=name)
    limiter = RedisLimiter(borrowed, RateLimit(), component_app_id=CID, prefix=unique_prefix())
    await limiter.acquire("ks_close")
    await limiter.aclose()
    assert await ours() == 1  # not ours to close
    await borrowed.aclose()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fallback": "ignore"},
        {"component_app_id": ""},
        {"prefix": ""},
        {"timeout": 0},
        {"probe_interval": float("inf")},
        {"safety_margin": -0.1},
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"component_app_id": CID, **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RedisLimiter.from_url("redis://127.0.0.1:1/0", RateLimit(), **args)


def test_core_package_does_not_import_the_redis_extra() -> None:
    code = (
        "import sys, kuaishou_mp, kuaishou_mp.testing; "
        "assert 'kuaishou_mp.redis' not in sys.modules and 'redis' not in sys.modules, "
        "sorted(m for m in sys.modules if 'redis' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
