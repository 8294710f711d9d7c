"""Tokens and locks in Redis: storage, lock ownership, and one renewal across OS processes.

Redis comes from ``KUAISHOU_TEST_REDIS_URL`` or a ``redis-server`` on PATH (see
``redis_support``); without either these tests skip, or fail under ``KUAISHOU_REQUIRE_REDIS=1``.

Run as a script, this module is a worker process: ``worker`` (the multi-process renewal test)
or ``hold-lock`` (takes a lock and waits to be killed).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio
from redis_support import (
    unique_prefix,
)

from kuaishou_mp import Client, RetryPolicy
from kuaishou_mp.auth import (
    AuthClient,
    LockTimeoutError,
    RedisLock,
    RedisTokenStorage,
    StoredToken,
    TokenManager,
    TokenStorage,
    TokenStorageError,
)
from kuaishou_mp.testing import FakeKuaishou

pytestmark = pytest.mark.redis

CID = "ks_component_test"
HERE = Path(__file__)


@pytest_asyncio.fixture
async def storage(redis_url: str) -> AsyncIterator[RedisTokenStorage]:
    s = RedisTokenStorage.from_url(redis_url, prefix=unique_prefix())
    yield s
    await s.aclose()


# -- storage ----------------------------------------------------------------------------------


async def test_round_trip_keys_and_lifetimes(
    storage: RedisTokenStorage, rdb: redis.asyncio.Redis
) -> None:
    assert isinstance(storage, TokenStorage)
    now = time.time()
    assert await storage.load_ticket(CID) is None
    await storage.save_ticket(CID, "ticket-1")
    assert await storage.load_ticket(CID) == "ticket-1"
    assert await storage.load_component_token(CID) is None
    component = StoredToken("ctok", now + 60, now + 30)
    await storage.save_component_token(CID, component)
    assert await storage.load_component_token(CID) == component

    access = StoredToken("atok", now + 120, now + 100)
    refresh = StoredToken("rtok", now + 2592000)
    await storage.save_authorizer_tokens(CID, "ks_a", access, refresh)
    assert await storage.load_access_token(CID, "ks_a") == access
    assert await storage.load_refresh_token(CID, "ks_a") == refresh
    assert await storage.load_access_token(CID, "ks_b") is None

    access_key = storage.key(CID, "ks_a", "access")
    refresh_key = storage.key(CID, "ks_a", "refresh")
    assert access_key.endswith(f":{CID}:{{ks_a}}:access")
    assert 100_000 < await rdb.pttl(access_key) <= 120_000  # expires with the token
    assert await rdb.pttl(refresh_key) == -1  # durable
    assert 0 < await rdb.pttl(storage.key(CID, None, "token")) <= 60_000
    assert "rtok" not in repr(await storage.load_refresh_token(CID, "ks_a"))


async def test_refresh_token_is_replaced_in_place_or_kept(storage: RedisTokenStorage) -> None:
    now = time.time()
    await storage.save_authorizer_tokens(
        CID, "ks_r", StoredToken("a1", now + 60), StoredToken("r1", now + 99)
    )
    await storage.save_authorizer_tokens(CID, "ks_r", StoredToken("a2", now + 60), None)
    refresh = await storage.load_refresh_token(CID, "ks_r")
    assert refresh is not None
    assert refresh.value == "r1"
    await storage.save_authorizer_tokens(
        CID, "ks_r", StoredToken("a3", now + 60), StoredToken("r2", now + 99)
    )
    refresh = await storage.load_refresh_token(CID, "ks_r")
    assert refresh is not None
    assert refresh.value == "r2"
    access = await storage.load_access_token(CID, "ks_r")
    assert access is not None
    assert access.value == "a3"
    # An invalidated access token leaves the refresh token alone.
    assert await storage.invalidate_access_token(CID, "ks_r", "a3")
    assert await storage.load_refresh_token(CID, "ks_r") == refresh


async def test_compare_and_invalidate(storage: RedisTokenStorage) -> None:
    now = time.time()
    await storage.save_authorizer_tokens(CID, "ks_c", StoredToken("new", now + 60), None)
    assert not await storage.invalidate_access_token(CID, "ks_c", "old")
    assert (await storage.load_access_token(CID, "ks_c")) is not None
    assert await storage.invalidate_access_token(CID, "ks_c", "new")
    assert await storage.load_access_token(CID, "ks_c") is None
    assert not await storage.invalidate_access_token(CID, "ks_c", "new")
    await storage.save_component_token(CID, StoredToken("c1", now + 60))
    assert not await storage.invalidate_component_token(CID, "c0")
    assert await storage.invalidate_component_token(CID, "c1")
    assert await storage.load_component_token(CID) is None


async def test_decoded_responses_and_namespaces(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    storage = RedisTokenStorage(client, prefix=unique_prefix())
    try:
        await storage.save_authorizer_tokens(
            CID, "ks_d", StoredToken("tok", time.time() + 60), None
        )
        loaded = await storage.load_access_token(CID, "ks_d")
        assert loaded is not None
        assert loaded.value == "tok"
        assert await storage.load_access_token("another_component", "ks_d") is None
        async with storage.lock(CID, "ks_d", ttl=5, timeout=1):
            pass
    finally:
        await storage.aclose()
        await client.aclose()  # not owned by the storage


async def test_storage_failures_are_typed_and_quiet() -> None:
    storage = RedisTokenStorage.from_url("redis://127.0.0.1:9/0", timeout=0.5)
    try:
        with pytest.raises(TokenStorageError) as info:
            await storage.save_ticket(CID, "SECRET-TICKET-123")
        assert "SECRET-TICKET-123" not in str(info.value)
        assert info.value.__context__ is None
        assert info.value.__cause__ is None
        with pytest.raises(TokenStorageError):
            await storage.lock(CID, "ks", ttl=1, timeout=0).__aenter__()
    finally:
        await storage.aclose()
    with pytest.raises(ValueError, match="prefix"):
        RedisTokenStorage(None, prefix="")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        RedisTokenStorage(None, timeout=0)  # type: ignore[arg-type]


# -- locks ------------------------------------------------------------------------------------


async def test_lock_release_checks_the_owner(rdb: redis.asyncio.Redis) -> None:
    key = f"{unique_prefix()}:lock"
    a = RedisLock(rdb, key, ttl=5, timeout=0)
    b = RedisLock(rdb, key, ttl=5, timeout=0)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    with pytest.raises(LockTimeoutError):
        await b.acquire()
    assert not await b.release()  # not b's: nothing happens
    assert await rdb.get(key) == a.owner.encode()
    assert await a.owned()
    assert not await b.owned()
    assert await a.release()
    assert await rdb.get(key) is None
    assert not await a.release()
    with pytest.raises(ValueError, match="ttl"):
        RedisLock(rdb, key, ttl=0, timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        RedisLock(rdb, key, ttl=1, timeout=-1)


async def test_expired_lock_is_not_released_by_its_old_owner(rdb: redis.asyncio.Redis) -> None:
    key = f"{unique_prefix()}:lock"
    stalled = RedisLock(rdb, key, ttl=0.15, timeout=0, auto_extend=False)
    assert await stalled.try_acquire()
    successor = RedisLock(rdb, key, ttl=5, timeout=2)
    await successor.acquire()  # waits until the stalled holder's lock expires
    assert not await stalled.release()
    assert await successor.owned()
    await successor.release()


async def test_watchdog_keeps_a_live_holders_lock(rdb: redis.asyncio.Redis) -> None:
    key = f"{unique_prefix()}:lock"
    async with RedisLock(rdb, key, ttl=0.4, timeout=0) as _:
        await asyncio.sleep(1.0)  # more than twice the ttl
        assert not await RedisLock(rdb, key, ttl=1, timeout=0).try_acquire()
    assert await rdb.get(key) is None


async def test_lock_of_a_killed_holder_expires(redis_url: str, rdb: redis.asyncio.Redis) -> None:
    key = f"{unique_prefix()}:lock"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE), "hold-lock", redis_url, key, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"held"
        await asyncio.sleep(1.3)  # past the ttl: the holder's watchdog keeps it
        assert not await RedisLock(rdb, key, ttl=1, timeout=0).try_acquire()
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        successor = RedisLock(rdb, key, ttl=5, timeout=5)
        await successor.acquire()
        assert time.monotonic() - killed < 2
        await successor.release()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


# -- one renewal across processes -------------------------------------------------------------


def _manager(
    base_url: str, secret: str, redis_url: str, prefix: str, **kwargs: Any
) -> TokenManager:
    auth = AuthClient(CID, secret, base_url=base_url, retry=RetryPolicy.none(), timeout=10)
    storage = RedisTokenStorage.from_url(redis_url, prefix=prefix)
    return TokenManager(auth, storage=storage, lock_ttl=5, lock_timeout=20, **kwargs)


async def test_two_managers_share_tokens(redis_url: str, kuaishou_fake: FakeKuaishou) -> None:
    prefix = unique_prefix()
    secret = kuaishou_fake.oauth.component_app_secret
    a = _manager(kuaishou_fake.base_url, secret, redis_url, prefix)
    b = _manager(kuaishou_fake.base_url, secret, redis_url, prefix)
    async with a, b:
        await a.set_ticket(kuaishou_fake.oauth.push_ticket())
        assert await b.get_component_token() == await a.get_component_token()
        kuaishou_fake.add_authorizer("ks_two")
        tokens = await asyncio.gather(*(m.get_token("ks_two") for m in (a, b) * 10))
        assert len(set(tokens)) == 1
        assert kuaishou_fake.oauth.exchanges["ks_two"] == 1
        assert kuaishou_fake.oauth.component_tokens_issued == 1


@pytest.mark.parametrize("how", ["reported", "timed"])
async def test_many_processes_hitting_an_expired_token_renew_it_once(
    how: str, redis_url: str, kuaishou_fake: FakeKuaishou
) -> None:
    """4 processes x 25 concurrent calls meet an expired token: exactly one exchange.

    ``reported``: the stored token still looks valid, the platform answers 100200108, every
    call invalidates it (compare-and-invalidate) and asks again. ``timed``: the stored token is
    past its expiry, so every call goes straight for the renewal lock.
    """
    oauth = kuaishou_fake.oauth
    prefix = unique_prefix()
    app_id = "ks_shared"
    warm = kuaishou_fake.add_authorizer("ks_warm")
    if how == "timed":
        oauth.access_token_ttl = 1
    async with _manager(
        kuaishou_fake.base_url, oauth.component_app_secret, redis_url, prefix
    ) as manager:
        await manager.set_ticket(oauth.push_ticket())
        first = await manager.authorize(oauth.authorize(app_id))
    oauth.access_token_ttl = 7200
    if how == "timed":
        await asyncio.sleep(1.1)
        assert kuaishou_fake.authorizer(app_id).token_expired
    else:
        kuaishou_fake.expire_token(app_id)
    assert oauth.exchanges[app_id] == 1

    cfg = {
        "base_url": kuaishou_fake.base_url,
        "secret": oauth.component_app_secret,
        "redis_url": redis_url,
        "prefix": prefix,
        "app_id": app_id,
        "calls": 25,
        "warm": [warm.app_id, warm.access_token],
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE),
            "worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(cfg).encode() + b"\n")
            await proc.stdin.drain()
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"ready", line
        for proc in procs:  # all at once
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        summaries = []
        for proc in procs:
            assert proc.stdout is not None
            out = await asyncio.wait_for(proc.stdout.read(), 30)
            summaries.append(json.loads(out))
            assert await proc.wait() == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert [s["errors"] for s in summaries] == [[]] * 4
    assert sum(s["ok"] for s in summaries) == 100
    assert oauth.exchanges[app_id] == 2  # the authorization, and exactly one renewal
    assert oauth.recoveries[app_id] == 1
    tokens = {s["token"] for s in summaries}
    assert tokens == {kuaishou_fake.authorizer(app_id).access_token}
    assert first.authorizer_access_token not in tokens
    if how == "reported":
        assert kuaishou_fake.counters["result:100200108"] >= 1
    else:
        assert kuaishou_fake.counters["result:100200108"] == 0


# -- worker processes -------------------------------------------------------------------------


async def _worker(cfg: dict[str, Any]) -> dict[str, Any]:
    from kuaishou_mp import Authorizer

    manager = _manager(cfg["base_url"], cfg["secret"], cfg["redis_url"], cfg["prefix"])
    ok = 0
    errors: list[str] = []
    async with (
        manager,
        Client(
            CID,
            base_url=cfg["base_url"],
            token_provider=manager,
            rate_limit=None,
            retry=RetryPolicy.none(),
            timeout=10,
        ) as client,
    ):
        # Warm up before the start signal: the HTTP connection, and Redis connections.
        await client.app_info(Authorizer(*cfg["warm"]))
        await asyncio.gather(*(manager.storage.load_ticket(CID) for _ in range(cfg["calls"])))
        print("ready", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if line.strip() != "go":
            raise SystemExit("expected 'go'")
        results = await asyncio.gather(
            *(client.app_info(cfg["app_id"]) for _ in range(cfg["calls"])),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                errors.append(repr(result))
            else:
                ok += 1
        token = await manager.get_token(cfg["app_id"])
    return {"ok": ok, "errors": errors, "token": token}


async def _hold_lock(url: str, key: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    lock = RedisLock(client, key, ttl=0.6, timeout=5)
    await lock.acquire()
    print("held", flush=True)
    await asyncio.sleep(60)  # until killed


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        config = json.loads(sys.stdin.readline())
        print(json.dumps(asyncio.run(_worker(config))), flush=True)
    elif sys.argv[1] == "hold-lock":
        asyncio.run(_hold_lock(sys.argv[2], sys.argv[3]))
