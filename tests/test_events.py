"""The push scheme and the receiver, against pushes built from the spec (tests/push_support.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import fastapi
import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from push_support import (
    CID,
    KEY,
    TICKET,
    TOKEN,
    encrypt,
    encrypt_bytes,
    envelope,
    new_key,
    sign,
    signed,
    ticket_message,
)
from starlette.applications import Starlette
from starlette.routing import Route

import kuaishou_mp
from kuaishou_mp import InvalidInputError, InvalidPushError, KuaishouError
from kuaishou_mp.auth import AuthClient, InMemoryTokenStorage, TokenManager
from kuaishou_mp.events import (
    ComponentTicket,
    InMemoryPushDedupe,
    PushEvent,
    PushReceiver,
    PushResponse,
    decrypt_message,
    starlette_endpoint,
    verify_signature,
)

# -- verify_signature -----------------------------------------------------------------------------


def test_signature_is_sha1_hex_of_body_then_token() -> None:
    body = envelope(ticket_message())
    assert verify_signature(body, sign(body), TOKEN)
    assert verify_signature(body, sign(body).upper(), TOKEN)


@pytest.mark.parametrize(
    "signature",
    ["", "0" * 40, "not hex at all", "é" * 40, sign(b"other body")],
)
def test_wrong_signatures_are_refused(signature: str) -> None:
    assert not verify_signature(b'{"a": 1}', signature, TOKEN)


def test_signature_depends_on_token_and_exact_bytes() -> None:
    body = b'{"a": 1}'
    assert not verify_signature(body, sign(body, "other token"), TOKEN)
    assert not verify_signature(b'{"a":1}', sign(body), TOKEN)  # re-serialized: not the bytes


# -- decrypt_message ------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.one_of(st.integers(), st.text(max_size=40), st.booleans(), st.none()),
        max_size=6,
    )
)
def test_round_trip_against_the_spec_encryptor(document: dict[str, Any]) -> None:
    key = KEY
    assert decrypt_message(encrypt(document, key), key) == document


def test_the_spec_example_ticket_decrypts_with_padded_and_unpadded_keys() -> None:
    key = new_key()
    assert len(key) == 43
    message = ticket_message()
    assert decrypt_message(encrypt(message, key), key) == message
    assert decrypt_message(encrypt(message, key), key + "=") == message


def test_aes_128_keys_work_too() -> None:
    key = base64.b64encode(b"k" * 16).decode()
    assert decrypt_message(encrypt({"event": "X"}, key), key) == {"event": "X"}


def decrypt_error(encrypted: str, key: str = KEY) -> InvalidPushError:
    with pytest.raises(InvalidPushError) as info:
        decrypt_message(encrypted, key)
    assert isinstance(info.value, KuaishouError)
    return info.value


@pytest.mark.parametrize(
    ("encrypted", "key", "says"),
    [
        ("not base64!!", KEY, "encryptedMsg is not valid base64"),
        ("ëncrypted", KEY, "encryptedMsg is not base64 text"),
        (encrypt({"event": "X"}), "short", "the encryption key is not valid base64"),
        (encrypt({"event": "X"}), base64.b64encode(b"x" * 20).decode(), "decodes to 20 bytes"),
        (base64.b64encode(b"x" * 17).decode(), KEY, "not a whole number of AES blocks"),
        ("", KEY, "not a whole number of AES blocks"),
        (encrypt({"event": "X"}, new_key()), KEY, "padding"),
        (encrypt_bytes(b"\xff\xfe" * 8), KEY, "not UTF-8"),
        (encrypt_bytes(b"{not json"), KEY, "not JSON"),
        (encrypt_bytes(b"[1, 2]"), KEY, "not a JSON object"),
    ],
)
def test_bad_input_says_which(encrypted: str, key: str, says: str) -> None:
    error = decrypt_error(encrypted, key)
    assert says in str(error)


def test_bad_padding_byte_values() -> None:
    # A plaintext whose last block ends in 0 or in an inconsistent run is bad padding.
    zero_end = encrypt_bytes(b"a" * 15 + b"\x00", pad=False)
    assert "padding" in str(decrypt_error(zero_end))
    broken_run = encrypt_bytes(b"a" * 13 + b"\x01\x02\x03", pad=False)
    assert "padding" in str(decrypt_error(broken_run))


def test_errors_never_show_content_or_key() -> None:
    secret_json = encrypt_bytes(b'{"componentTicket": "TICKET-canary-4e8a1b"')  # not JSON
    for error in (decrypt_error(secret_json), decrypt_error(encrypt_bytes(b"[1]"))):
        text = repr(error) + str(error) + repr(error.args)
        assert TICKET not in text
        assert KEY not in text
        assert "canary" not in text


def test_invalid_push_error_is_public() -> None:
    assert kuaishou_mp.InvalidPushError is InvalidPushError
    assert issubclass(InvalidPushError, KuaishouError)


# -- models ---------------------------------------------------------------------------------------


def test_reprs_hide_tickets_codes_and_tokens() -> None:
    ticket = ComponentTicket(CID, TICKET, 1, 2400, "m1")
    assert TICKET not in repr(ticket)
    assert ticket.event == "COMPONENT_TICKET"
    event = PushEvent(
        "AUTHORIZED",
        "m2",
        CID,
        1,
        {"authorizationCode": "CODE-canary", "nested": [{"accessToken": "TOK-canary"}], "n": 7},
    )
    assert "canary" not in repr(event)
    assert "'n': 7" in repr(event)
    assert "AUTHORIZED" in repr(event)
    assert event.data["authorizationCode"] == "CODE-canary"


# -- the receiver ---------------------------------------------------------------------------------


class Recorder:
    """An on_event that records what it gets, and can be told to fail or to wait."""

    def __init__(self) -> None:
        self.events: list[ComponentTicket | PushEvent] = []
        self.fail = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, event: ComponentTicket | PushEvent) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise RuntimeError(f"application failed on {event!r} TICKET-canary-4e8a1b")
        self.events.append(event)


@pytest_asyncio.fixture
async def manager() -> AsyncIterator[TokenManager]:
    async with TokenManager(AuthClient(CID, "component-secret")) as m:
        yield m


def receiver_for(
    manager: TokenManager | None = None, on_event: Any = None, **options: Any
) -> PushReceiver:
    return PushReceiver(CID, TOKEN, KEY, token_manager=manager, on_event=on_event, **options)


def answer_of(response: PushResponse) -> dict[str, Any]:
    assert response.content_type == "application/json"
    document: dict[str, Any] = json.loads(response.body)
    return document


async def push(receiver: PushReceiver, body: bytes) -> PushResponse:
    return await receiver.handle(body, signed(body))


async def test_a_ticket_reaches_the_token_manager_and_on_event(manager: TokenManager) -> None:
    recorder = Recorder()
    receiver = receiver_for(manager, recorder)
    body = envelope(ticket_message(), msg_id="m-1")
    response = await push(receiver, body)
    assert (response.status, answer_of(response)) == (200, {"result": 1, "message_id": "m-1"})
    assert await manager.storage.load_ticket(CID) == TICKET
    [event] = recorder.events
    assert event == ComponentTicket(CID, TICKET, 1625740912167, 2400, "m-1")


async def test_sync_on_event_and_other_events_are_push_events() -> None:
    got: list[Any] = []
    receiver = receiver_for(on_event=got.append)
    message = {"event": "AUTHORIZATION_REVOKED", "authorizerAppId": "ks1", "extra": [1]}
    body = envelope(message, msg_id="m-2", timestamp=42)
    response = await push(receiver, body)
    assert response.ok
    assert got == [PushEvent("AUTHORIZATION_REVOKED", "m-2", CID, 42, message)]


async def test_an_older_ticket_is_acknowledged_not_applied(manager: TokenManager) -> None:
    recorder = Recorder()
    receiver = receiver_for(manager, recorder)
    newer = envelope(ticket_message("ticket-new", event_time=2000), msg_id="new")
    older = envelope(ticket_message("ticket-old", event_time=1000), msg_id="old")
    assert (await push(receiver, newer)).ok
    response = await push(receiver, older)
    assert answer_of(response) == {"result": 1, "message_id": "old"}
    assert await manager.storage.load_ticket(CID) == "ticket-new"
    assert [e.msg_id for e in recorder.events] == ["new"]  # the stale one was dropped whole
    later = envelope(ticket_message("ticket-later", event_time=3000), msg_id="later")
    assert (await push(receiver, later)).ok
    assert await manager.storage.load_ticket(CID) == "ticket-later"
    assert [e.msg_id for e in recorder.events] == ["new", "later"]


async def test_a_redelivered_message_is_applied_once(manager: TokenManager) -> None:
    recorder = Recorder()
    receiver = receiver_for(manager, recorder)
    body = envelope(ticket_message(), msg_id="dup")
    for _ in range(3):
        response = await push(receiver, body)
        assert answer_of(response) == {"result": 1, "message_id": "dup"}
    assert len(recorder.events) == 1


async def test_a_failing_on_event_answers_500_and_the_redelivery_applies() -> None:
    recorder = Recorder()
    recorder.fail = 1
    receiver = receiver_for(on_event=recorder)
    body = envelope({"event": "AUTHORIZED", "authorizationCode": "c"}, msg_id="retry-me")
    first = await push(receiver, body)
    assert first.status == 500
    assert answer_of(first)["result"] != 1
    assert b"RuntimeError" in first.body
    assert b"canary" not in first.body
    assert recorder.events == []
    second = await push(receiver, body)
    assert second.ok
    assert len(recorder.events) == 1


async def test_the_same_message_in_flight_twice_answers_409() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    receiver = receiver_for(on_event=recorder)
    body = envelope({"event": "AUTHORIZED"}, msg_id="slow")
    first = asyncio.create_task(push(receiver, body))
    await asyncio.sleep(0.01)
    assert (await push(receiver, body)).status == 409
    recorder.gate.set()
    assert (await first).ok
    assert (await push(receiver, body)).ok
    assert len(recorder.events) == 1


def with_field(**changes: Any) -> bytes:
    document = json.loads(envelope(ticket_message()))
    for name, value in changes.items():
        if value is ...:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document).encode()


BAD_BODIES: dict[str, tuple[bytes, int]] = {
    "not JSON": (b"{not json", 400),
    "a JSON array": (b"[1, 2]", 400),
    "no encryptedMsg": (with_field(encryptedMsg=...), 400),
    "no msgId": (with_field(msgId=...), 400),
    "empty msgId": (with_field(msgId=""), 400),
    "no componentAppId": (with_field(componentAppId=...), 400),
    "timestamp a string": (with_field(timestamp="1625740912167"), 400),
    "timestamp a boolean": (with_field(timestamp=True), 400),
    "encryptedMsg a number": (with_field(encryptedMsg=5), 400),
    "undecryptable": (with_field(encryptedMsg=encrypt(ticket_message(), new_key())), 400),
    "not base64": (with_field(encryptedMsg="%%%"), 400),
    "decrypted without event": (envelope({"componentAppId": CID}), 400),
    "ticket without componentTicket": (envelope({"event": "COMPONENT_TICKET"}), 400),
    "ticket with a string eventTime": (
        envelope({**ticket_message(), "eventTime": "1625740912167"}),
        400,
    ),
    "another componentAppId": (envelope(ticket_message(), cid="ks_other"), 403),
    "another componentAppId inside": (envelope(ticket_message(cid="ks_other")), 403),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
async def test_bad_pushes_are_refused_and_nothing_is_applied(
    case: str, manager: TokenManager
) -> None:
    body, status = BAD_BODIES[case]
    recorder = Recorder()
    receiver = receiver_for(manager, recorder)
    response = await push(receiver, body)
    assert response.status == status, answer_of(response)
    answer = answer_of(response)
    assert answer["result"] != 1
    assert answer["message"]
    assert TICKET.encode() not in response.body
    assert TOKEN.encode() not in response.body
    assert await manager.storage.load_ticket(CID) is None
    assert recorder.events == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"kwaisign": ""}, {"kwaisign": "0" * 40}, {"kwaisign": sign(b"x")}],
    ids=["missing", "empty", "zeros", "other body"],
)
async def test_no_or_wrong_signature_answers_401(
    headers: dict[str, str], manager: TokenManager
) -> None:
    receiver = receiver_for(manager)
    response = await receiver.handle(envelope(ticket_message()), headers)
    assert response.status == 401
    assert await manager.storage.load_ticket(CID) is None


async def test_signature_header_is_found_in_any_case() -> None:
    body = envelope({"event": "X"})
    response = await receiver_for().handle(body, {"KwaiSign": sign(body)})
    assert response.ok


async def test_a_body_over_the_cap_answers_413() -> None:
    body = envelope({"event": "X", "pad": "x" * 500})
    response = await push(receiver_for(max_body_bytes=300), body)
    assert response.status == 413


async def test_a_ticket_storage_failure_answers_500(manager: TokenManager) -> None:
    class Broken(InMemoryTokenStorage):
        async def save_ticket(self, cid: str, ticket: str, event_time: int | None = None) -> bool:
            raise OSError(f"disk full while writing {ticket}")

    async with TokenManager(AuthClient(CID, "s"), storage=Broken()) as broken:
        receiver = receiver_for(broken)
        body = envelope(ticket_message(), msg_id="m")
        response = await push(receiver, body)
        assert response.status == 500
        assert TICKET.encode() not in response.body
        # Not remembered: the redelivery tries again.
        assert await InMemoryPushDedupe().claim(CID, "m") == "new"
        assert (await push(receiver, body)).status == 500


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (("", TOKEN, KEY), {}),
        ((CID, "", KEY), {}),
        ((CID, TOKEN, None), {}),
        ((CID, TOKEN.encode(), KEY), {}),
        ((CID, TOKEN, KEY.encode()), {}),
        ((CID, TOKEN, "not a key!"), {}),
        ((CID, TOKEN, base64.b64encode(b"x" * 20).decode()), {}),
        ((CID, TOKEN, KEY), {"max_body_bytes": 0}),
        ((CID, TOKEN, KEY), {"max_body_bytes": True}),
        ((CID, TOKEN, KEY), {"on_event": "not callable"}),
    ],
)
def test_bad_arguments_are_refused(args: tuple[Any, ...], options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as info:
        PushReceiver(*args, **options)
    assert TOKEN not in str(info.value)
    assert KEY not in str(info.value)


async def test_a_token_manager_of_another_component_is_refused() -> None:
    async with TokenManager(AuthClient("ks_other", "s")) as other:
        with pytest.raises(InvalidInputError, match="another component_app_id"):
            PushReceiver(CID, TOKEN, KEY, token_manager=other)


def test_receiver_repr_shows_no_secret() -> None:
    text = repr(receiver_for())
    assert TOKEN not in text
    assert KEY not in text
    assert CID in text


async def test_logs_name_the_reason_never_a_secret(
    manager: TokenManager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kuaishou_mp")
    recorder = Recorder()
    recorder.fail = 1
    receiver = receiver_for(manager, recorder)
    body = envelope(ticket_message(), msg_id="logged")
    assert (await push(receiver, body)).status == 500
    assert (await push(receiver, body)).ok
    assert (await push(receiver, envelope(ticket_message(), cid="x"))).status == 403
    assert (await receiver.handle(body, {"kwaisign": "bad"})).status == 401
    text = caplog.text
    assert "status=401" in text
    assert "status=403" in text
    assert "on_event raised" in text
    assert TICKET not in text
    assert TOKEN not in text
    assert KEY not in text
    assert all(r.levelno <= logging.INFO for r in caplog.records)


def test_in_memory_dedupe_forgets_after_its_ttl() -> None:
    now = [0.0]
    dedupe = InMemoryPushDedupe(ttl=10, clock=lambda: now[0])

    async def scenario() -> None:
        assert await dedupe.claim(CID, "a") == "new"
        assert await dedupe.claim(CID, "a") == "busy"
        await dedupe.done(CID, "a")
        assert await dedupe.claim(CID, "a") == "done"
        assert await dedupe.claim("other", "a") == "new"
        now[0] = 10.0
        assert len(dedupe) == 0
        assert await dedupe.claim(CID, "a") == "new"

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="ttl"):
        InMemoryPushDedupe(ttl=0)


# -- adapters -------------------------------------------------------------------------------------


async def test_aiohttp_handler(manager: TokenManager) -> None:
    receiver = receiver_for(manager, max_body_bytes=2000)
    app = web.Application()
    app.router.add_post("/push", receiver.aiohttp_handler())
    async with TestClient(TestServer(app)) as client:
        body = envelope(ticket_message(), msg_id="via-aiohttp")
        response = await client.post("/push", data=body, headers=signed(body))
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == {"result": 1, "message_id": "via-aiohttp"}
        assert await manager.storage.load_ticket(CID) == TICKET
        wrong = await client.post("/push", data=body, headers={"kwaisign": "x"})
        assert wrong.status == 401

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 500

        big = await client.post("/push", data=chunks(), headers=signed(b""))
        assert big.status == 413
        declared = await client.post("/push", data=b" " * 3000, headers=signed(b" " * 3000))
        assert declared.status == 413


def asgi_client(app: Any) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in process (no server, no Starlette TestClient)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


async def test_starlette_endpoint() -> None:
    got: list[Any] = []
    receiver = receiver_for(on_event=got.append, max_body_bytes=2000)
    app = Starlette(routes=[Route("/push", starlette_endpoint(receiver), methods=["POST"])])
    async with asgi_client(app) as client:
        body = envelope({"event": "AUTHORIZED"}, msg_id="via-starlette")
        response = await client.post("/push", content=body, headers=signed(body))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"result": 1, "message_id": "via-starlette"}
        forged = await client.post("/push", content=body, headers={"kwaisign": "0"})
        assert forged.status_code == 401
        big = b" " * 3000
        assert (await client.post("/push", content=big, headers=signed(big))).status_code == 413
    assert [e.msg_id for e in got] == ["via-starlette"]


async def test_fastapi_route() -> None:
    got: list[Any] = []
    app = fastapi.FastAPI()
    app.add_api_route(
        "/push", starlette_endpoint(receiver_for(on_event=got.append)), methods=["POST"]
    )
    async with asgi_client(app) as client:
        body = envelope({"event": "AUTHORIZED"}, msg_id="via-fastapi")
        response = await client.post("/push", content=body, headers=signed(body))
        assert response.json() == {"result": 1, "message_id": "via-fastapi"}
    assert len(got) == 1


async def test_set_ticket_checks_event_time(manager: TokenManager) -> None:
    with pytest.raises(InvalidInputError, match="event_time"):
        await manager.set_ticket("t", event_time="1")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="event_time"):
        await manager.set_ticket("t", event_time=True)
    assert await manager.set_ticket("t", event_time=5)
    assert not await manager.set_ticket("t-old", event_time=4)
    assert await manager.set_ticket("t-manual")  # without a time: always stored
