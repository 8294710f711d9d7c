"""What a push carries, once verified and decrypted, and what the receiver answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["COMPONENT_TICKET", "ComponentTicket", "PushEvent", "PushResponse"]

COMPONENT_TICKET = "COMPONENT_TICKET"
"""The ``event`` name of the ticket push."""

# Field names whose values are secrets; PushEvent's repr leaves their values out.
_SECRET_WORDS = ("ticket", "code", "token", "secret", "key")


def _mask(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: "***" if any(w in str(k).lower() for w in _SECRET_WORDS) else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _masked(data: Mapping[str, Any]) -> str:
    return repr(_mask(data))


@attrs.frozen
class ComponentTicket:
    """A ``COMPONENT_TICKET`` push: the ticket the component access token is obtained with.

    Args:
        component_app_id: Your component app id.
        ticket: The ticket (a secret; left out of ``repr``).
        event_time: When the platform issued it, in milliseconds since the epoch.
        expires_in: Seconds it stays valid, as the push says.
        msg_id: The push's ``msgId``.
    """

    component_app_id: str
    ticket: str = attrs.field(repr=False)
    event_time: int
    expires_in: int
    msg_id: str = ""

    @property
    def event(self) -> str:
        """Always ``"COMPONENT_TICKET"``."""
        return COMPONENT_TICKET


@attrs.frozen
class PushEvent:
    """Any other push (authorized, revoked, code recovered, code audit, and later ones).

    The platform does not document these events' fields, so the whole decrypted object is
    handed over as it came, in :attr:`data`.

    Args:
        event: The ``event`` name of the decrypted message.
        msg_id: The push's ``msgId``.
        component_app_id: Your component app id.
        timestamp: The push's ``timestamp``, in milliseconds since the epoch.
        data: The whole decrypted object. Its ``repr`` masks the values of fields whose names
            mention a ticket, code, token, secret or key.
    """

    event: str
    msg_id: str
    component_app_id: str
    timestamp: int
    data: Mapping[str, Any] = attrs.field(repr=_masked)


@attrs.frozen
class PushResponse:
    """What to answer the platform: the receiver's result, for any web framework.

    Args:
        status: The HTTP status.
        body: The JSON body (bytes).
        content_type: Always ``application/json``.
    """

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, document: Mapping[str, Any]) -> PushResponse:
        """A response with ``document`` as its JSON body."""
        return cls(status, json.dumps(document, ensure_ascii=False).encode("utf-8"))

    @property
    def ok(self) -> bool:
        """Whether this is the answer the platform counts as delivered."""
        return self.status == 200
