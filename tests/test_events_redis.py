"""Pushes with Redis: the ticket never goes backwards, and two receivers apply a message once."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
import redis.asyncio
from push_support import CID, KEY, TOKEN, envelope, signed, ticket_message
from redis_support import unique_prefix

from kuaishou_mp.auth import AuthClient, RedisTokenStorage, TokenManager, TokenStorageError
from kuaishou_mp.events import PushDedupe, PushReceiver, RedisPushDedupe

if TYPE_CHECKING:
    from conftest import MakeFake

pytestmark = pytest.mark.redis

HERE = Path(__file__)


@pytest_asyncio.fixture
async def storage(redis_url: str) -> AsyncIterator[RedisTokenStorage]:
    s = RedisTokenStorage.from_url(redis_url, prefix=unique_prefix())
    yield s
    await s.aclose()


async def test_the_redis_ticket_never_goes_backwards(
    storage: RedisTokenStorage, rdb: redis.asyncio.Redis
) -> None:
    assert await storage.save_ticket(CID, "t2", 2000)
    assert not await storage.save_ticket(CID, "t1", 1000)
    assert await storage.load_ticket(CID) == "t2"
    assert await storage.save_ticket(CID, "t2b", 2000)  # same time: a redelivery, harmless
    assert await storage.save_ticket(CID, "t3", 3000)
    assert await storage.load_ticket(CID) == "t3"
    key = storage.key(CID, None, "ticket")
    assert await rdb.hgetall(key) == {b"v": b"t3", b"t": b"3000"}
    assert await storage.save_ticket(CID, "manual")  # no time: always stored, time forgotten
    assert await storage.load_ticket(CID) == "manual"
    assert await storage.save_ticket(CID, "t0", 1)


async def test_concurrent_tickets_keep_the_latest(storage: RedisTokenStorage) -> None:
    times = list(range(1000, 1050))
    results = await asyncio.gather(*(storage.save_ticket(CID, f"t{t}", t) for t in times))
    assert results[-1] is True
    assert await storage.load_ticket(CID) == "t1049"


class Counting:
    def __init__(self, fail: int = 0) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, event: Any) -> None:
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise RuntimeError("application down")


def receiver(storage: RedisTokenStorage, manager: TokenManager, on_event: Any) -> PushReceiver:
    dedupe = RedisPushDedupe.for_storage(storage)
    assert isinstance(dedupe, PushDedupe)
    return PushReceiver(CID, TOKEN, KEY, token_manager=manager, on_event=on_event, dedupe=dedupe)


async def test_two_receivers_on_one_redis_apply_a_message_once(
    redis_url: str, rdb: redis.asyncio.Redis
) -> None:
    prefix = unique_prefix()
    storages = [RedisTokenStorage.from_url(redis_url, prefix=prefix) for _ in range(2)]
    managers = [TokenManager(AuthClient(CID, "s"), storage=s) for s in storages]
    on_event = Counting(fail=1)
    a, b = (receiver(s, m, on_event) for s, m in zip(storages, managers, strict=True))
    try:
        body = envelope(ticket_message("ticket-shared"), msg_id="m-shared")
        # First delivery fails in the application: 500, nothing remembered...
        assert (await a.handle(body, signed(body))).status == 500
        key = f"{prefix}:{CID}:push:m-shared"
        assert await rdb.get(key) is None
        # ...so the redelivery, reaching the other receiver, applies it.
        assert (await b.handle(body, signed(body))).ok
        assert await rdb.get(key) == b"done"
        ttl = await rdb.ttl(key)
        assert 86000 < ttl <= 86400
        # Later deliveries, to either receiver, are acknowledged without applying.
        for r in (a, b, a):
            assert (await r.handle(body, signed(body))).ok
        assert on_event.calls == 2
        assert await managers[0].storage.load_ticket(CID) == "ticket-shared"
        # Both deliveries at once: one applies, the other is told to come back (409).
        concurrent = envelope(ticket_message("ticket-2", event_time=2**41), msg_id="m-both")
        answers = await asyncio.gather(
            a.handle(concurrent, signed(concurrent)), b.handle(concurrent, signed(concurrent))
        )
        assert sorted(r.status for r in answers) in ([200, 200], [200, 409])
        assert on_event.calls in (3, 4)
        assert await managers[1].storage.load_ticket(CID) == "ticket-2"
    finally:
        for m in managers:
            await m.aclose()


async def test_a_claim_of_a_dead_receiver_expires(redis_url: str, rdb: redis.asyncio.Redis) -> None:
    prefix = unique_prefix()
    dead = RedisPushDedupe(rdb, prefix=prefix, lease=1)
    alive = RedisPushDedupe(rdb, prefix=prefix, lease=1)
    assert await dead.claim(CID, "m") == "new"  # and never finishes
    assert await alive.claim(CID, "m") == "busy"
    await alive.release(CID, "m")  # not its claim: nothing happens
    assert await alive.claim(CID, "m") == "busy"
    await asyncio.sleep(1.1)
    assert await alive.claim(CID, "m") == "new"
    await dead.release(CID, "m")  # too late: the claim is no longer its own
    assert await rdb.get(alive.key(CID, "m")) is not None


async def test_a_redis_failure_answers_500_and_is_quiet() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        dedupe = RedisPushDedupe(client, timeout=1.0)
        with pytest.raises(TokenStorageError, match="Redis push claim failed") as info:
            await dedupe.claim(CID, "m")
        assert info.value.__cause__ is None
        assert info.value.__context__ is None
        r = PushReceiver(CID, TOKEN, KEY, dedupe=dedupe)
        body = envelope({"event": "X"})
        response = await r.handle(body, signed(body))
        assert response.status == 500
    finally:
        await client.aclose()


def test_redis_dedupe_arguments_are_checked() -> None:
    client = redis.asyncio.Redis()
    with pytest.raises(ValueError, match="prefix"):
        RedisPushDedupe(client, prefix="")
    with pytest.raises(ValueError, match="lease"):
        RedisPushDedupe(client, lease=0)


async def test_a_pushed_ticket_reaches_a_token_manager_in_another_process(
    make_fake: MakeFake, redis_url: str
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    prefix = unique_prefix()
    fake = await make_fake()
    secret = fake.oauth.component_app_secret
    auth = AuthClient(fake.component_app_id, secret, base_url=fake.base_url)
    storage = RedisTokenStorage.from_url(redis_url, prefix=prefix)
    async with TokenManager(auth, storage=storage) as manager:
        receiver = PushReceiver(
            fake.component_app_id,
            fake.push.verification_token,
            fake.push.encryption_key,
            token_manager=manager,
            dedupe=RedisPushDedupe.for_storage(storage),
        )
        app = web.Application()
        app.router.add_post("/push", receiver.aiohttp_handler())
        server = TestServer(app)
        await server.start_server()
        try:
            fake.push.url = str(server.make_url("/push"))
            [delivery] = await fake.push.push_ticket()
            assert delivery.acknowledged
        finally:
            await server.close()
    config = {
        "redis_url": redis_url,
        "prefix": prefix,
        "base_url": fake.base_url,
        "component_app_id": fake.component_app_id,
        "secret": secret,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE),
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["ticket"] == fake.oauth.ticket
    assert result["token_length"] > 0
    assert fake.oauth.component_tokens_issued == 1


async def _other_process(config: dict[str, Any]) -> dict[str, Any]:
    storage = RedisTokenStorage.from_url(config["redis_url"], prefix=config["prefix"])
    auth = AuthClient(config["component_app_id"], config["secret"], base_url=config["base_url"])
    async with TokenManager(auth, storage=storage) as manager:
        token = await manager.get_component_token()
        ticket = await storage.load_ticket(config["component_app_id"])
    return {"ticket": ticket, "token_length": len(token)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_other_process(json.loads(sys.argv[1])))))
