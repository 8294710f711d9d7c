"""The push receiver: verify, decrypt, apply once, and answer as the platform expects."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._validate import integer, text
from ..errors import InvalidInputError, InvalidPushError
from ._crypto import decrypt_message, key_bytes, verify_signature
from .dedupe import Claim, InMemoryPushDedupe, PushDedupe
from .models import COMPONENT_TICKET, ComponentTicket, PushEvent, PushResponse

if TYPE_CHECKING:
    from aiohttp import web

    from ..auth.manager import TokenManager

__all__ = ["EventHandler", "PushReceiver"]

logger = logging.getLogger("kuaishou_mp")

EventHandler = Callable[["ComponentTicket | PushEvent"], "Awaitable[object] | object"]
"""``on_event(event)``, sync or async: gets a :class:`ComponentTicket` for a ticket push and a
:class:`PushEvent` for every other one. An exception makes the receiver answer 500, so the
platform delivers the message again."""

SIGNATURE_HEADER = "kwaisign"
"""The HTTP header that carries a push's signature."""


class _Refused(Exception):
    """A push refused with an HTTP status; the message names no secret and no content."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # A plain dict is case-sensitive; the frameworks' header maps are not.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _integer(document: Mapping[str, Any], field: str, where: str) -> int:
    value = document.get(field)
    if value is None:
        raise _Refused(400, f"{where} has no {field}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Refused(400, f"{where} field {field} must be an integer")
    return value


def _string(document: Mapping[str, Any], field: str, where: str) -> str:
    value = document.get(field)
    if value is None:
        raise _Refused(400, f"{where} has no {field}")
    if not isinstance(value, str) or not value:
        raise _Refused(400, f"{where} field {field} must be a non-empty string")
    return value


class PushReceiver:
    """Receives the platform's pushes: tickets to the token manager, events to your code.

    Framework-neutral: :meth:`handle` takes the raw body and the headers and returns a
    :class:`PushResponse`. :meth:`aiohttp_handler` and
    :func:`~kuaishou_mp.events.starlette_endpoint` adapt it to aiohttp and to Starlette /
    FastAPI.

    Each push is checked in this order, and nothing is applied unless every check passes:

    ======================================================== ======
    the body is larger than ``max_body_bytes``                413
    no ``kwaisign`` header, or it does not sign the body      401
    not a JSON object, a field missing or of the wrong type   400
    ``componentAppId`` is not yours                           403
    ``encryptedMsg`` cannot be decrypted                      400
    another receiver is applying the same ``msgId`` now       409
    ``on_event`` (or storing the ticket) raised               500
    ======================================================== ======

    Otherwise the answer is ``{"result": 1, "message_id": msgId}``, the one the platform
    counts as delivered. Any other answer makes the platform push again (up to 3 times).

    **Applied once.** A ``msgId`` is claimed in ``dedupe`` before it is applied and marked
    done only after: a push delivered again after success is acknowledged and not applied; a
    push whose ``on_event`` failed is applied again at the next delivery.

    **Tickets** go to ``token_manager.set_ticket`` with their ``eventTime``: a ticket older
    than the stored one is acknowledged and dropped (neither stored nor handed to
    ``on_event``). Every other push, tickets included, then goes to ``on_event``.

    **Secrets** (the verification token, the key, tickets, codes) appear in no log line, no
    exception and no answer; refusals are logged at INFO with the reason only.

    Args:
        component_app_id: Your component app id; pushes for another answer 403.
        verification_token: The message verification token (消息验证 TOKEN).
        encryption_key: The message encryption key (消息加密解密 KEY), base64.
        token_manager: Where tickets go (:meth:`TokenManager.set_ticket
            <kuaishou_mp.auth.TokenManager.set_ticket>`); ``None``: only to ``on_event``.
        on_event: Your :data:`EventHandler`, sync or async.
        dedupe: Who remembers applied ``msgId``\\ s: an :class:`InMemoryPushDedupe` (one day)
            by default; a :class:`RedisPushDedupe` for several receivers.
        max_body_bytes: Larger bodies answer 413 without being read further.

    Raises:
        InvalidInputError: An argument is malformed, such as a key that is not base64 of 16,
            24 or 32 bytes (the message never shows a secret).
    """

    def __init__(
        self,
        component_app_id: str,
        verification_token: str,
        encryption_key: str,
        *,
        token_manager: TokenManager | None = None,
        on_event: EventHandler | None = None,
        dedupe: PushDedupe | None = None,
        max_body_bytes: int = 65536,
    ) -> None:
        text("component_app_id", component_app_id)
        text("verification_token", verification_token, secret=True)
        text("encryption_key", encryption_key, secret=True)
        try:
            key_bytes(encryption_key)
        except InvalidPushError as exc:
            raise InvalidInputError(f"encryption_key: {exc.message}") from None
        integer("max_body_bytes", max_body_bytes)
        if on_event is not None and not callable(on_event):
            raise InvalidInputError("on_event must be callable")
        if token_manager is not None and token_manager.component_app_id != component_app_id:
            raise InvalidInputError("token_manager belongs to another component_app_id")
        self._cid = component_app_id
        self._token = verification_token
        self._key = encryption_key
        self._manager = token_manager
        self._on_event = on_event
        self._dedupe: PushDedupe = dedupe if dedupe is not None else InMemoryPushDedupe()
        self._max = max_body_bytes

    def __repr__(self) -> str:
        return f"<PushReceiver component_app_id={self._cid!r} dedupe={type(self._dedupe).__name__}>"

    @property
    def component_app_id(self) -> str:
        """The component app id pushes must carry."""
        return self._cid

    @property
    def max_body_bytes(self) -> int:
        """The largest body accepted; adapters stop reading beyond it."""
        return self._max

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> PushResponse:
        """Verify, decrypt and apply one push; return what to answer.

        Never raises for a bad push: every refusal is an answer (see the class's table).

        Args:
            body: The raw request body, exactly as received.
            headers: The request headers (any mapping; ``kwaisign`` is looked up
                case-insensitively).
        """
        try:
            return await self._handle(body, headers)
        except _Refused as refused:
            logger.info("push refused status=%d: %s", refused.status, refused.message)
            return PushResponse.json(refused.status, {"result": 0, "message": refused.message})

    def oversized(self) -> PushResponse:
        """The 413 answer, for adapters that stop reading a body at :attr:`max_body_bytes`."""
        message = f"body larger than {self._max} bytes"
        logger.info("push refused status=413: %s", message)
        return PushResponse.json(413, {"result": 0, "message": message})

    async def _handle(self, body: bytes, headers: Mapping[str, str]) -> PushResponse:
        if len(body) > self._max:
            return self.oversized()
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise _Refused(401, "no kwaisign header")
        if not verify_signature(body, signature, self._token):
            raise _Refused(401, "the kwaisign signature does not match the body")
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            raise _Refused(400, "the body is not JSON") from None
        if type(envelope) is not dict:
            raise _Refused(400, "the body is not a JSON object")
        encrypted = _string(envelope, "encryptedMsg", "the body")
        msg_id = _string(envelope, "msgId", "the body")
        component = _string(envelope, "componentAppId", "the body")
        timestamp = _integer(envelope, "timestamp", "the body")
        if component != self._cid:
            raise _Refused(403, "the push is for another componentAppId")
        try:
            data = decrypt_message(encrypted, self._key)
        except InvalidPushError as exc:
            raise _Refused(400, f"cannot decrypt the push: {exc.message}") from None
        event = self._event(data, msg_id, timestamp)
        claim = await self._claim(msg_id)
        if claim == "done":
            logger.info("push already applied, acknowledged again msg_id=%s", msg_id)
            return self._delivered(msg_id)
        if claim == "busy":
            raise _Refused(409, "the same msgId is being applied right now")
        try:
            applied = await self._apply(event)
        except BaseException:
            await self._release(msg_id)
            raise
        try:
            await self._dedupe.done(self._cid, msg_id)
        except Exception as exc:
            # Applied, but not remembered: a redelivery would apply it again, which the
            # ticket tolerates and an on_event must too. Answer success anyway: it was applied.
            logger.info(
                "push applied but not remembered (%s) msg_id=%s", type(exc).__name__, msg_id
            )
        if applied:
            logger.info("push applied event=%s msg_id=%s", event.event, msg_id)
        return self._delivered(msg_id)

    def _event(
        self, data: dict[str, Any], msg_id: str, timestamp: int
    ) -> ComponentTicket | PushEvent:
        name = _string(data, "event", "the decrypted message")
        inner = data.get("componentAppId")
        if inner is not None and inner != self._cid:
            raise _Refused(403, "the decrypted message is for another componentAppId")
        if name != COMPONENT_TICKET:
            return PushEvent(name, msg_id, self._cid, timestamp, data)
        where = "the decrypted ticket"
        return ComponentTicket(
            self._cid,
            _string(data, "componentTicket", where),
            _integer(data, "eventTime", where),
            _integer(data, "expiresIn", where),
            msg_id,
        )

    async def _claim(self, msg_id: str) -> Claim:
        try:
            return await self._dedupe.claim(self._cid, msg_id)
        except Exception as exc:
            raise _Refused(500, f"cannot check the msgId ({type(exc).__name__})") from None

    async def _release(self, msg_id: str) -> None:
        try:
            await self._dedupe.release(self._cid, msg_id)
        except Exception as exc:  # the claim then expires by itself
            logger.info("push claim not released (%s) msg_id=%s", type(exc).__name__, msg_id)

    async def _apply(self, event: ComponentTicket | PushEvent) -> bool:
        """Store a ticket and call ``on_event``; ``False``: a stale ticket, dropped."""
        if isinstance(event, ComponentTicket) and self._manager is not None:
            try:
                stored = await self._manager.set_ticket(event.ticket, event_time=event.event_time)
            except Exception as exc:
                raise _Refused(500, f"cannot store the ticket ({type(exc).__name__})") from None
            if not stored:
                # Dropped whole: an application keeping its own copy must not go back either.
                logger.info(
                    "push ticket older than the stored one: acknowledged, not applied msg_id=%s",
                    event.msg_id,
                )
                return False
        if self._on_event is not None:
            try:
                result = self._on_event(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                # The class only: the application's message may quote what it was handed.
                raise _Refused(500, f"on_event raised {type(exc).__name__}") from None
        return True

    def _delivered(self, msg_id: str) -> PushResponse:
        return PushResponse.json(200, {"result": 1, "message_id": msg_id})

    def aiohttp_handler(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """An aiohttp request handler: ``app.router.add_post("/kuaishou/push", handler)``.

        It reads at most :attr:`max_body_bytes` (plus one) bytes of the body.
        """
        from aiohttp import web

        async def push_handler(request: web.Request) -> web.StreamResponse:
            limit = self._max
            if request.content_length is not None and request.content_length > limit:
                answer = self.oversized()
            else:
                body = bytearray()
                while len(body) <= limit:
                    chunk = await request.content.read(limit + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
                if len(body) > limit:
                    answer = self.oversized()
                else:
                    answer = await self.handle(bytes(body), request.headers)
            return web.Response(
                status=answer.status, body=answer.body, content_type=answer.content_type
            )

        return push_handler
