"""The fake platform pushes signed, encrypted messages, and redelivers on a wrong answer."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hardening_support import poll_until
from push_support import encrypt, raw_key, sign

from kuaishou_mp.auth import AuthClient, TokenManager
from kuaishou_mp.events import ComponentTicket, PushEvent, PushReceiver
from kuaishou_mp.testing import FakeKuaishou, PushDelivery

if TYPE_CHECKING:
    from conftest import MakeClient


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeKuaishou]:
    async with FakeKuaishou() as f:
        f.push.retry_delay = 0.01
        yield f


async def serve(handler: Callable[[web.Request], Any]) -> TestServer:
    app = web.Application()
    app.router.add_post("/push", handler)
    server = TestServer(app)
    await server.start_server()
    return server


def receiver_of(fake: FakeKuaishou, **options: Any) -> PushReceiver:
    return PushReceiver(
        fake.component_app_id, fake.push.verification_token, fake.push.encryption_key, **options
    )


async def test_the_pushed_message_follows_the_spec(fake: FakeKuaishou) -> None:
    seen: list[tuple[bytes, str]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((body, request.headers["kwaisign"]))
        assert request.content_type == "application/json"
        msg_id = json.loads(body)["msgId"]
        return web.json_response({"result": 1, "message_id": msg_id})

    server = await serve(handler)
    try:
        fake.push.url = str(server.make_url("/push"))
        [delivery] = await fake.push.push_ticket()
        assert delivery.acknowledged
        assert delivery.attempt == 1
        [(body, signature)] = seen
        # Checked with the tests' own reading of the spec, not with the SDK.
        assert signature == sign(body, fake.push.verification_token)
        assert len(fake.push.encryption_key) == 43
        assert len(raw_key(fake.push.encryption_key)) == 32
        envelope = json.loads(body)
        assert set(envelope) == {"encryptedMsg", "msgId", "componentAppId", "timestamp"}
        assert envelope["componentAppId"] == fake.component_app_id
        assert isinstance(envelope["timestamp"], int)
        key = raw_key(fake.push.encryption_key)
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        padded = decryptor.update(base64.b64decode(envelope["encryptedMsg"]))
        padded += decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        message = json.loads(unpadder.update(padded) + unpadder.finalize())
        assert message["event"] == "COMPONENT_TICKET"
        assert message["componentTicket"] == fake.oauth.ticket
        assert set(message) == {
            "componentAppId",
            "componentTicket",
            "event",
            "eventTime",
            "expiresIn",
        }
        # And the tests' encryptor produces what the fake produces, for the same plaintext.
        assert encrypt(message, fake.push.encryption_key)
    finally:
        await server.close()


@pytest.mark.parametrize(
    "wrong",
    ["http 500", "wrong message_id", "result 0", "text/plain", "not JSON", "result true"],
)
async def test_a_wrong_answer_is_redelivered(fake: FakeKuaishou, wrong: str) -> None:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        msg_id = json.loads(await request.read())["msgId"]
        calls.append(msg_id)
        if len(calls) < 3:
            if wrong == "http 500":
                return web.json_response({"result": 1, "message_id": msg_id}, status=500)
            if wrong == "wrong message_id":
                return web.json_response({"result": 1, "message_id": "other"})
            if wrong == "result 0":
                return web.json_response({"result": 0, "message_id": msg_id})
            if wrong == "result true":
                return web.json_response({"result": True, "message_id": msg_id})
            if wrong == "text/plain":
                return web.Response(text=json.dumps({"result": 1, "message_id": msg_id}))
            return web.Response(body=b"{nope", content_type="application/json")
        return web.json_response({"result": 1, "message_id": msg_id})

    server = await serve(handler)
    try:
        fake.push.url = str(server.make_url("/push"))
        deliveries = await fake.push.push_event("CODE_AUDIT", {"authorizerAppId": "ks1"})
        assert [d.attempt for d in deliveries] == [1, 2, 3]
        assert [d.acknowledged for d in deliveries] == [False, False, True]
        assert len(set(calls)) == 1  # the same msgId every time
        c = fake.push.counters
        assert (c["messages"], c["deliveries"], c["redeliveries"]) == (1, 3, 2)
        assert (c["wrong_answer"], c["acknowledged"], c["gave_up"]) == (2, 1, 0)
    finally:
        await server.close()


async def test_after_three_redeliveries_the_fake_gives_up(fake: FakeKuaishou) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"result": 0}, status=503)

    server = await serve(handler)
    try:
        fake.push.url = str(server.make_url("/push"))
        deliveries = await fake.push.push_ticket()
        assert [(d.attempt, d.status, d.acknowledged) for d in deliveries] == [
            (1, 503, False),
            (2, 503, False),
            (3, 503, False),
            (4, 503, False),
        ]
        assert fake.push.counters["gave_up"] == 1
        assert fake.push.counters["redeliveries"] == 3
    finally:
        await server.close()


async def test_no_answer_counts_and_is_redelivered(fake: FakeKuaishou) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({})

    server = await serve(handler)
    url = str(server.make_url("/push"))
    await server.close()  # nothing listens there any more
    fake.push.url = url
    fake.push.max_redeliveries = 1
    deliveries = await fake.push.push_ticket()
    assert deliveries == [
        PushDelivery(deliveries[0].msg_id, "COMPONENT_TICKET", 1, None, False),
        PushDelivery(deliveries[0].msg_id, "COMPONENT_TICKET", 2, None, False),
    ]
    assert fake.push.counters["no_answer"] == 2


async def test_without_a_url_nothing_is_pushed(fake: FakeKuaishou) -> None:
    with pytest.raises(RuntimeError, match=r"push\.url"):
        await fake.push.push_ticket()
    fake.oauth.authorize("ks_quiet")  # no URL: no push, no error
    await fake.push.wait_idle()
    assert fake.push.counters["messages"] == 0


async def test_start_push_ticket_then_the_whole_chain(
    fake: FakeKuaishou, make_client: MakeClient
) -> None:
    """The fake pushes to the SDK's receiver; the manager gets a component token; calls work."""
    auth = AuthClient(
        fake.component_app_id, fake.oauth.component_app_secret, base_url=fake.base_url
    )
    events: list[Any] = []
    async with TokenManager(auth) as manager:
        receiver = receiver_of(fake, token_manager=manager, on_event=events.append)
        app = web.Application()
        app.router.add_post("/kuaishou/push", receiver.aiohttp_handler())
        server = TestServer(app)
        await server.start_server()
        try:
            fake.push.url = str(server.make_url("/kuaishou/push"))
            fake.push.interval = 0.05
            await manager.start_push_ticket()
            assert await poll_until(lambda: fake.push.counters["acknowledged"] >= 3)
            assert all(isinstance(e, ComponentTicket) for e in events)
            token = await manager.get_component_token()
            assert token
            assert fake.oauth.component_tokens_issued == 1
            # The stored ticket is the latest pushed one.
            assert await manager.storage.load_ticket(fake.component_app_id) in {
                e.ticket for e in events
            }

            # A mini-program authorizes: the event arrives with its code.
            code = fake.oauth.authorize("ks_app_1")
            await fake.push.wait_idle()
            [authorized] = [e for e in events if isinstance(e, PushEvent)]
            assert authorized.event == "AUTHORIZED"
            assert authorized.data["authorizerAppId"] == "ks_app_1"
            assert authorized.data["authorizationCode"] == code
            assert code not in repr(authorized)
            tokens = await manager.authorize(authorized.data["authorizationCode"])
            assert tokens.authorizer_app_id == "ks_app_1"
            async with make_client(fake, token_provider=manager) as client:
                info = await client.app_info("ks_app_1")
                assert info.app_name
            assert fake.push.counters["gave_up"] == 0
        finally:
            await server.close()


async def test_a_failing_application_gets_the_redelivery_and_applies_once(
    fake: FakeKuaishou,
) -> None:
    attempts: list[str] = []

    def on_event(event: ComponentTicket | PushEvent) -> None:
        attempts.append(event.msg_id)
        if len(attempts) == 1:
            raise RuntimeError("database down")

    receiver = receiver_of(fake, on_event=on_event)
    app = web.Application()
    app.router.add_post("/push", receiver.aiohttp_handler())
    server = TestServer(app)
    await server.start_server()
    try:
        fake.push.url = str(server.make_url("/push"))
        deliveries = await fake.push.push_event("AUTHORIZATION_REVOKED", {"authorizerAppId": "a"})
        assert [(d.status, d.acknowledged) for d in deliveries] == [(500, False), (200, True)]
        assert len(attempts) == 2
        assert len(set(attempts)) == 1
        # The platform pushing the same message again later changes nothing.
        body = fake.push.envelope({"event": "AUTHORIZATION_REVOKED"}, deliveries[0].msg_id)
        answer = await receiver.handle(body, {"kwaisign": fake.push.sign(body)})
        assert answer.ok
        assert len(attempts) == 2
    finally:
        await server.close()


async def test_stopping_the_fake_stops_the_ticker() -> None:
    fake = FakeKuaishou()
    await fake.start()
    got: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        got.append(1)
        return web.json_response(
            {"result": 1, "message_id": json.loads(await request.read())["msgId"]}
        )

    server = await serve(handler)
    try:
        fake.push.url = str(server.make_url("/push"))
        fake.push.interval = 0.02
        auth = AuthClient(
            fake.component_app_id, fake.oauth.component_app_secret, base_url=fake.base_url
        )
        async with auth:
            await auth.start_push_ticket()
        assert await poll_until(lambda: len(got) >= 2)
        await fake.stop()
        seen = len(got)
        await asyncio.sleep(0.1)
        assert len(got) == seen
    finally:
        await fake.stop()
        await server.close()
