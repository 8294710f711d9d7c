"""The three endpoints as data, with pure request encoding and response decoding (no I/O).

Everything that knows the platform's wire format lives here, so it can be tested without a
network: input validation, request bodies, the response envelope, code -> exception mapping.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from ._convert import structure
from ._json import loads
from ._scrub import excerpt, scrub
from .errors import (
    APIError,
    InvalidInputError,
    ResponseValidationError,
    TransportError,
)
from .models import AppInfo, DomainAction, ServerDomains, WebviewDomains

__all__ = [
    "APP_INFO",
    "SERVER_DOMAIN",
    "WEBVIEW_DOMAIN",
    "Endpoint",
    "Idempotency",
    "decode",
    "delete_took_effect",
    "domain_body",
    "parse_action",
    "validate_domain",
]


class Idempotency(enum.Enum):
    """What repeating a call can do, which decides what the retry layer may repeat."""

    SAFE = "safe"
    """Repeating changes nothing (reads, and writes that converge): retry what the policy says."""
    CONFIRM_DELETE = "confirm_delete"
    """Domain calls: a ``delete`` retried after an ambiguous failure that answers 403106 (not
    found) may have succeeded the first time; a ``get`` decides (see :mod:`kuaishou_mp.retry`)."""
    ONCE = "once"
    """The call spends something (an authorization code): retry only failures that certainly did
    not reach the platform, and throttling."""


@attrs.frozen
class Endpoint:
    """One platform endpoint: how to call it, what it answers and what repeating it can do."""

    name: str
    method: str
    path: str
    model: type[Any]
    lists: tuple[str, ...] = ()
    idempotency: Idempotency = Idempotency.SAFE


APP_INFO: Final = Endpoint("app_info", "GET", "/openapi/mp/auth/app/info", AppInfo)
SERVER_DOMAIN: Final = Endpoint(
    "server_domain",
    "POST",
    "/openapi/mp/auth/app/server_domain",
    ServerDomains,
    ServerDomains.LISTS,
    Idempotency.CONFIRM_DELETE,
)
WEBVIEW_DOMAIN: Final = Endpoint(
    "webview_domain",
    "POST",
    "/openapi/mp/auth/app/webview_domain",
    WebviewDomains,
    WebviewDomains.LISTS,
    Idempotency.CONFIRM_DELETE,
)

_ACTIONS: Final = {a.value: a for a in DomainAction}
_FORBIDDEN = {
    "/": "a path or a scheme ('/')",
    "\\": "a backslash",
    "?": "a query ('?')",
    "#": "a fragment ('#')",
    "@": "user info ('@')",
}


def parse_action(action: DomainAction | str) -> DomainAction:
    """Return the :class:`DomainAction` for ``action`` or raise :class:`InvalidInputError`."""
    if isinstance(action, DomainAction):
        return action
    found = _ACTIONS.get(action) if isinstance(action, str) else None
    if found is None:
        raise InvalidInputError(
            f"unknown domain action {action!r}: expected one of {', '.join(_ACTIONS)}"
        )
    return found


def validate_domain(domain: object, where: str) -> str:
    """Return ``domain`` if it is a bare host name the platform could accept, else raise.

    The platform's examples use bare host names (``example.com``). We refuse what cannot be one:
    empty strings, whitespace or control characters, a scheme, path, query, fragment or user
    info, a non-numeric port, and names longer than DNS allows. We do not invent stricter rules
    (wildcards, ports and IDNs pass), since the platform publishes none.
    """
    if not isinstance(domain, str):
        raise InvalidInputError(f"{where}: expected a string, got {type(domain).__name__}")
    if not domain:
        raise InvalidInputError(f"{where}: a domain must not be empty")
    for ch in domain:
        if ch.isspace() or not ch.isprintable():
            raise InvalidInputError(
                f"{where}: {domain!r} contains whitespace or a control character {ch!r}"
            )
        reason = _FORBIDDEN.get(ch)
        if reason is not None:
            raise InvalidInputError(f"{where}: {domain!r} is not a bare host name: it has {reason}")
    host, sep, port = domain.rpartition(":")
    if sep and (not host or ":" in host or not _is_port(port)):
        raise InvalidInputError(
            f"{where}: {domain!r} is not a bare host name: ':' may only introduce a port"
        )
    if len(host or domain) > 253:
        raise InvalidInputError(f"{where}: {domain[:40]!r}... is longer than 253 characters")
    return domain


def _is_port(text: str) -> bool:
    # ASCII digits only, and few of them: str.isdigit() also admits "²" and "٣", which int()
    # refuses or reads as another number, and int() refuses more than 4300 digits.
    return len(text) <= 5 and text.isascii() and text.isdigit() and 0 < int(text) < 65536


def domain_body(
    endpoint: Endpoint,
    action: DomainAction | str,
    lists: Mapping[str, Iterable[str] | None],
) -> dict[str, Any]:
    """Build and validate the JSON body of a domain call.

    ``get`` sends no lists (giving one is an error); the other actions send the lists that are not
    ``None`` and need at least one of them.
    """
    act = parse_action(action)
    body: dict[str, Any] = {"action": act.value}
    for name in endpoint.lists:
        values = lists.get(name)
        if values is None:
            continue
        if act is DomainAction.GET:
            raise InvalidInputError(f"{name}: 'get' sends no domain lists; leave it as None")
        if isinstance(values, (str, bytes)):
            raise InvalidInputError(f"{name}: expected a list of domains, not a single string")
        body[name] = [validate_domain(d, f"{name}[{i}]") for i, d in enumerate(values)]
    if act is not DomainAction.GET and len(body) == 1:
        raise InvalidInputError(
            f"{act.value!r} needs at least one domain list ({', '.join(endpoint.lists)})"
        )
    return body


def delete_took_effect(endpoint: Endpoint, body: Mapping[str, Any], current: object) -> bool:
    """Whether none of the domains a delete ``body`` names is in ``current`` (the state read)."""
    targets = {name: {d.lower() for d in body.get(name, ())} for name in endpoint.lists}
    return not any(
        d.lower() in targets[name] for name in endpoint.lists for d in getattr(current, name)
    )


def decode(
    endpoint: Endpoint,
    status: int,
    body: bytes,
    *,
    app_id: str | None,
    error_codes: Mapping[int, type[APIError]],
    secrets: Iterable[str | None] = (),
) -> Any:
    """Turn an HTTP answer into the endpoint's model, or raise the matching typed error.

    A JSON object with an integer ``result`` decides: ``1`` is success (on a 2xx), anything else
    an :class:`APIError` subclass from ``error_codes``. Without such an object, an HTTP error
    status or a body that is not JSON is a :class:`TransportError`; JSON of another shape is a
    :class:`ResponseValidationError`.
    """
    try:
        doc = loads(body)
    except (ValueError, RecursionError):  # the stdlib parser recurses on deep nesting
        doc = _NOT_JSON
    if type(doc) is dict:
        result = doc.get("result")
        if type(result) is int:
            if result == 1 and 200 <= status < 300:
                return structure(doc, endpoint.model, endpoint=endpoint.name, app_id=app_id)
            if result != 1:
                cls = error_codes.get(result, APIError)
                raise cls(
                    _message(doc, secrets),
                    code=result,
                    http_status=status,
                    endpoint=endpoint.name,
                    app_id=app_id,
                )
    if status >= 300 or doc is _NOT_JSON:
        raise TransportError(
            "unexpected HTTP status" if status >= 300 else "response body is not JSON",
            status=status,
            body_excerpt=excerpt(body, secrets),
            endpoint=endpoint.name,
            app_id=app_id,
        )
    raise ResponseValidationError(
        "expected a JSON object with an integer 'result'",
        errors=[f"got {_describe(doc)} @ $"],
        endpoint=endpoint.name,
        app_id=app_id,
    )


_NOT_JSON: Final = object()
_MAX_MESSAGE: Final = 500


def _message(doc: dict[str, Any], secrets: Iterable[str | None]) -> str:
    # The platform's own text, which it controls: it may echo the token (masked here), be
    # huge (cut), or not be a string at all (a nested array would even defeat str()).
    message = doc.get("error_msg") or doc.get("errorMsg") or ""
    if type(message) is not str:
        kind = type(message)
        message = str(message) if kind in (int, float, bool) else f"<a JSON {kind.__name__}>"
    message = scrub(message, secrets)  # before cutting: a token cut in two is not masked
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "..."


def _describe(doc: object) -> str:
    if type(doc) is dict:
        return f"an object whose 'result' is {type(doc.get('result')).__name__}"
    return f"a JSON {type(doc).__name__}"
