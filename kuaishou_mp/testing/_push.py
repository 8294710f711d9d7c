"""The fake platform's pushes: signed, encrypted tickets and events POSTed to your receiver.

Written from the platform's scheme on its own (it imports nothing from the SDK), so a receiver
tested against it is tested against the scheme, not against itself.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
import attrs

__all__ = ["FakePush", "PushDelivery"]

COMPONENT_TICKET = "COMPONENT_TICKET"
AUTHORIZED = "AUTHORIZED"


@attrs.frozen
class PushDelivery:
    """One POST of one pushed message, and what the receiver answered.

    Attributes:
        msg_id: The message's ``msgId`` (the same on every redelivery).
        event: The ``event`` name inside the message.
        attempt: 1 for the first delivery, 2..4 for the redeliveries.
        status: The HTTP status of the answer, or ``None`` when none came.
        acknowledged: Whether the answer was ``{"result": 1, "message_id": msgId}``.
    """

    msg_id: str
    event: str
    attempt: int
    status: int | None
    acknowledged: bool


class _Tickets(Protocol):
    def push_ticket(self) -> str: ...


class _Platform(Protocol):
    """What the pushes need from the fake platform (:class:`FakeKuaishou`)."""

    @property
    def component_app_id(self) -> str: ...

    @property
    def oauth(self) -> _Tickets: ...


def _new_key() -> str:
    # 32 random bytes, shown as the platform shows keys: 43 base64 characters, no "=".
    return base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _encrypt(plain: bytes, key: str) -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    raw = base64.b64decode(key + "=" * (-len(key) % 4))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(raw), modes.CBC(raw[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def _now_ms() -> int:
    return int(time.time() * 1000)


class FakePush:
    """The pushes of :class:`~kuaishou_mp.testing.FakeKuaishou`, reached as ``fake.push``.

    Set :attr:`url` to your receiver's authorization-event URL; then:

    * a successful ``start_push_ticket`` call pushes a ticket at once and then every
      :attr:`interval` seconds (the platform: 10 minutes);
    * :meth:`FakeOAuth.authorize <kuaishou_mp.testing.FakeOAuth.authorize>` pushes an
      ``AUTHORIZED`` event (``authorizerAppId``, ``authorizationCode``, ``expiresIn``,
      ``eventTime``: the event name and fields are the fake's own, the platform documents
      none);
    * :meth:`push_ticket` and :meth:`push_event` push on demand and return the deliveries.

    Each message is POSTed as the platform does: JSON ``{encryptedMsg, msgId,
    componentAppId, timestamp}``, AES-CBC with :attr:`encryption_key` (IV: its first 16
    bytes, PKCS#7), signed in the ``kwaisign`` header (SHA-1 hex of the body followed by
    :attr:`verification_token`). An answer other than HTTP 200 with ``{"result": 1,
    "message_id": msgId}`` (or no answer within :attr:`timeout`) is a failed delivery: the
    same message is pushed again after :attr:`retry_delay` seconds, up to
    :attr:`max_redeliveries` (3) times.

    Needs ``cryptography`` (the ``events`` extra) once something is pushed.
    """

    def __init__(self, fake: _Platform) -> None:
        self._fake = fake
        self.url: str | None = None
        """Where messages are POSTed (your authorization-event URL); ``None``: nothing is
        pushed. Settable."""
        self.verification_token: str = "fake_verify_" + secrets.token_hex(8)
        """The message verification token pushes are signed with. Settable."""
        self.encryption_key: str = _new_key()
        """The message encryption key (43 base64 characters). Settable."""
        self.interval: float = 600.0
        """Seconds between ticket pushes after ``start_push_ticket``. Settable."""
        self.retry_delay: float = 1.0
        """Seconds before a failed delivery is repeated. Settable."""
        self.max_redeliveries: int = 3
        """How many times a failed delivery is repeated. Settable."""
        self.timeout: float = 5.0
        """Seconds the receiver has to answer one delivery. Settable."""
        self.counters: collections.Counter[str] = collections.Counter()
        """``"messages"`` pushed, ``"deliveries"`` (POSTs), ``"acknowledged"``,
        ``"wrong_answer"``, ``"no_answer"``, ``"redeliveries"``, ``"gave_up"`` (messages never
        acknowledged), and per event ``"event:<name>"``."""
        self.deliveries: list[PushDelivery] = []
        """Every delivery, in order."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<FakePush url={self.url!r} messages={self.counters['messages']}>"

    # ------------------------------------------------------------------ pushing

    async def push_ticket(self) -> list[PushDelivery]:
        """Issue a new ticket (``fake.oauth.push_ticket()``) and push it; return its deliveries.

        Raises:
            RuntimeError: :attr:`url` is not set.
        """
        ticket = self._fake.oauth.push_ticket()
        return await self._push_ticket(ticket)

    async def push_event(
        self, event: str, fields: Mapping[str, Any] | None = None
    ) -> list[PushDelivery]:
        """Push an event named ``event`` with ``fields`` (plus ``componentAppId``, ``event``
        and ``eventTime``); return its deliveries.

        Raises:
            RuntimeError: :attr:`url` is not set.
        """
        message: dict[str, Any] = {
            "componentAppId": self._fake.component_app_id,
            "event": event,
            "eventTime": _now_ms(),
            **(fields or {}),
        }
        return await self._deliver(message)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until the pushes started in the background (not the ticker) have finished."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout)

    # ------------------------------------------------------------------ called by the fake

    def started(self, ticket: str) -> None:
        """``start_push_ticket`` succeeded and issued ``ticket``: push it, then keep pushing.

        Called by the fake; does nothing while :attr:`url` is unset or outside a loop.
        """
        if self.url is None or not self._in_loop():
            return
        self._background(self._push_ticket(ticket))
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def authorized(self, app_id: str, code: str, expires_in: int) -> None:
        """A mini-program authorized: push the ``AUTHORIZED`` event (called by the fake)."""
        if self.url is None or not self._in_loop():
            return
        fields = {
            "authorizerAppId": app_id,
            "authorizationCode": code,
            "expiresIn": expires_in,
        }
        self._background(self.push_event(AUTHORIZED, fields))

    def cancel(self) -> None:
        """Stop the ticker and every delivery in flight (the fake is stopping)."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _in_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.url is not None:
                await self.push_ticket()

    async def _push_ticket(self, ticket: str) -> list[PushDelivery]:
        message = {
            "componentAppId": self._fake.component_app_id,
            "componentTicket": ticket,
            "event": COMPONENT_TICKET,
            "eventTime": _now_ms(),
            "expiresIn": 10800,
        }
        return await self._deliver(message)

    def envelope(self, message: Mapping[str, Any], msg_id: str | None = None) -> bytes:
        """The body the fake POSTs for ``message`` (encrypted with :attr:`encryption_key`)."""
        plain = json.dumps(message, ensure_ascii=False).encode("utf-8")
        return json.dumps(
            {
                "encryptedMsg": _encrypt(plain, self.encryption_key),
                "msgId": msg_id if msg_id is not None else str(uuid.uuid4()),
                "componentAppId": self._fake.component_app_id,
                "timestamp": _now_ms(),
            }
        ).encode("utf-8")

    def sign(self, body: bytes) -> str:
        """The ``kwaisign`` of ``body``."""
        return hashlib.sha1(body + self.verification_token.encode("utf-8")).hexdigest()

    async def _deliver(self, message: Mapping[str, Any]) -> list[PushDelivery]:
        url = self.url
        if url is None:
            raise RuntimeError("fake.push.url is not set: nowhere to push")
        msg_id = str(uuid.uuid4())
        body = self.envelope(message, msg_id)
        headers = {"Content-Type": "application/json", "kwaisign": self.sign(body)}
        event = str(message.get("event"))
        counters = self.counters
        counters["messages"] += 1
        counters["event:" + event] += 1
        done: list[PushDelivery] = []
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(1, self.max_redeliveries + 2):
                if attempt > 1:
                    counters["redeliveries"] += 1
                    await asyncio.sleep(self.retry_delay)
                counters["deliveries"] += 1
                status, acknowledged = await self._post(session, url, body, headers, msg_id)
                delivery = PushDelivery(msg_id, event, attempt, status, acknowledged)
                self.deliveries.append(delivery)
                done.append(delivery)
                if acknowledged:
                    counters["acknowledged"] += 1
                    return done
                counters["no_answer" if status is None else "wrong_answer"] += 1
        counters["gave_up"] += 1
        return done

    @staticmethod
    async def _post(
        session: aiohttp.ClientSession,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        msg_id: str,
    ) -> tuple[int | None, bool]:
        try:
            async with session.post(url, data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
                content_type = response.content_type
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return None, False
        if status != 200 or content_type != "application/json":
            return status, False
        try:
            answer = json.loads(raw)
        except ValueError:
            return status, False
        acknowledged = (
            type(answer) is dict
            and type(answer.get("result")) is int
            and answer.get("result") == 1
            and answer.get("message_id") == msg_id
        )
        return status, acknowledged
