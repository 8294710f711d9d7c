"""The five documented OAuth endpoints as data: request building and decoding, no I/O.

All are ``GET`` with query parameters; answers carry ``result`` and ``errorMsg``. Decoding reuses
the basic-info envelope rules (:func:`kuaishou_mp._endpoints.decode`), then masks every secret
of the call in the platform's message, since an error text may echo what was sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote

import attrs

from .._endpoints import Endpoint, Idempotency
from .._endpoints import decode as _decode
from .._scrub import scrub
from ..errors import APIError, InvalidInputError
from .models import AuthorizationCode, AuthorizerTokens, ComponentAccessToken, PreAuthCode

__all__ = [
    "AUTHORIZER_ACCESS_TOKEN",
    "COMPONENT_ACCESS_TOKEN",
    "ENDPOINTS",
    "PRE_AUTH_CODE",
    "RE_AUTHORIZATION_CODE",
    "START_PUSH_TICKET",
    "Ack",
    "build_query",
    "decode",
]


@attrs.frozen
class Ack:
    """An answer with nothing but ``result`` and ``errorMsg``."""


START_PUSH_TICKET: Final = Endpoint(
    "start_push_ticket", "GET", "/mp/tp/oauth/start_push_ticket", Ack
)
COMPONENT_ACCESS_TOKEN: Final = Endpoint(
    "component_access_token", "GET", "/mp/tp/oauth/access_token", ComponentAccessToken
)
PRE_AUTH_CODE: Final = Endpoint("pre_auth_code", "GET", "/mp/tp/oauth/pre_auth_code", PreAuthCode)
# An authorization code is spent by the exchange that succeeds: when an answer is lost after the
# request may have reached the platform, a retry would spend nothing but a refusal and the
# issued tokens would be lost anyway.
AUTHORIZER_ACCESS_TOKEN: Final = Endpoint(
    "authorizer_access_token",
    "GET",
    "/mp/tp/oauth/authorizer_access_token",
    AuthorizerTokens,
    idempotency=Idempotency.ONCE,
)
RE_AUTHORIZATION_CODE: Final = Endpoint(
    "re_authorization_code", "GET", "/mp/tp/oauth/re_authorization_code", AuthorizationCode
)

ENDPOINTS: Final = (
    START_PUSH_TICKET,
    COMPONENT_ACCESS_TOKEN,
    PRE_AUTH_CODE,
    AUTHORIZER_ACCESS_TOKEN,
    RE_AUTHORIZATION_CODE,
)
"""The five endpoints, in the order of the authorization flow."""


def build_query(endpoint: Endpoint, params: Mapping[str, object]) -> str:
    """The percent-encoded query string of a call.

    Every parameter must be a non-empty string. The error names the parameter, never its value
    (most of them are secrets).

    Raises:
        InvalidInputError: A parameter is not a non-empty string.
    """
    parts = []
    for name, value in params.items():
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{name} must be a non-empty string", endpoint=endpoint.name)
        parts.append(f"{name}={quote(value, safe='')}")
    return "&".join(parts)


def decode(
    endpoint: Endpoint,
    status: int,
    body: bytes,
    *,
    app_id: str | None,
    error_codes: Mapping[int, type[APIError]],
    secrets: Iterable[str | None],
) -> Any:
    """Turn an HTTP answer into the endpoint's model, or raise the matching typed error.

    The same envelope rules as the basic-info endpoints (``errorMsg`` is read as the message);
    ``secrets`` are masked in the error text and in body excerpts.

    Raises:
        APIError: ``result != 1`` (the subclass from ``error_codes``).
        TransportError: An HTTP error status or a body that is not JSON.
        ResponseValidationError: JSON of another shape.
    """
    secrets = tuple(secrets)
    try:
        return _decode(
            endpoint, status, body, app_id=app_id, error_codes=error_codes, secrets=secrets
        )
    except APIError as exc:
        # Raised by _decode outside any except block, so it carries no chained context.
        exc.message = scrub(exc.message, secrets)
        exc.args = (exc.message,)
        raise
