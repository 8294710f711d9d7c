"""Pushed messages: the platform's tickets and authorization events, verified and decrypted.

Needs the ``events`` extra (``cryptography``): ``pip install 'kuaishou-mp[events]'``.

* :class:`PushReceiver`: checks the ``kwaisign`` signature, decrypts ``encryptedMsg``, hands a
  ticket to :meth:`TokenManager.set_ticket <kuaishou_mp.auth.TokenManager.set_ticket>` and
  every event to your ``on_event``, applies each ``msgId`` once, and answers as the platform
  expects. Framework-neutral (:meth:`PushReceiver.handle`), with adapters for aiohttp
  (:meth:`PushReceiver.aiohttp_handler`) and Starlette / FastAPI (:func:`starlette_endpoint`).
* :func:`verify_signature` and :func:`decrypt_message`: the scheme's two pure steps.
* :class:`ComponentTicket` and :class:`PushEvent`: what a push carries.
* :class:`InMemoryPushDedupe` and :class:`RedisPushDedupe`: who remembers applied ``msgId``\\ s.
"""

from __future__ import annotations

from ..errors import InvalidPushError
from ._crypto import decrypt_message, verify_signature
from ._starlette import starlette_endpoint
from .dedupe import DAY, Claim, InMemoryPushDedupe, PushDedupe, RedisPushDedupe
from .models import COMPONENT_TICKET, ComponentTicket, PushEvent, PushResponse
from .receiver import SIGNATURE_HEADER, EventHandler, PushReceiver

__all__ = [
    "COMPONENT_TICKET",
    "DAY",
    "SIGNATURE_HEADER",
    "Claim",
    "ComponentTicket",
    "EventHandler",
    "InMemoryPushDedupe",
    "InvalidPushError",
    "PushDedupe",
    "PushEvent",
    "PushReceiver",
    "PushResponse",
    "RedisPushDedupe",
    "decrypt_message",
    "starlette_endpoint",
    "verify_signature",
]
