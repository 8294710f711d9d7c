"""The aiohttp session a client owns or borrows, and the options every client checks alike."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import attrs

from ._urls import hide_userinfo
from ._validate import field, integer, number, text
from .errors import DEFAULT_ERROR_CODES, APIError, ClientClosedError, InvalidInputError

__all__ = ["ConnectionLimits", "SessionHolder", "check_client_options"]


@attrs.frozen
class ConnectionLimits:
    """The connection pool of a client-owned session.

    Args:
        max_connections: Open connections in all, an integer >= 1. The default suits fan-out
            over many authorizers at high concurrency (aiohttp's own default of 100 would halve
            a bulk run at concurrency 200 against a slow platform).
        keepalive_timeout: Seconds (>= 0) an idle connection is kept for reuse.
        dns_cache_ttl: Seconds (an integer >= 0) a DNS answer is reused.

    Raises:
        InvalidInputError: A value is out of range or of the wrong type.
    """

    max_connections: int = attrs.field(
        default=1000, validator=field("ConnectionLimits", integer, low=1)
    )
    keepalive_timeout: float = attrs.field(
        default=30.0, validator=field("ConnectionLimits", number, low_ok=True)
    )
    dns_cache_ttl: int = attrs.field(
        default=300, validator=field("ConnectionLimits", integer, low=0)
    )


class SessionHolder:
    """A session created on first use (inside the running loop) and closed once, or an
    injected one that is used as is and never closed."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        *,
        limits: ConnectionLimits,
        verify_ssl: bool,
        owner: str,
    ) -> None:
        self.session = session
        self.owns_session = session is None
        self.limits = limits
        self.verify_ssl = verify_ssl
        self.owner = owner
        self.closed = False

    def get(self) -> aiohttp.ClientSession:
        """The session, made on first use; :class:`ClientClosedError` once closed."""
        if self.closed:
            raise ClientClosedError(f"this {self.owner} is closed; create a new one")
        if self.session is None:
            connector = aiohttp.TCPConnector(
                limit=self.limits.max_connections,
                limit_per_host=0,
                keepalive_timeout=self.limits.keepalive_timeout,
                ttl_dns_cache=self.limits.dns_cache_ttl,
                ssl=self.verify_ssl,
            )
            self.session = aiohttp.ClientSession(
                connector=connector,
                # The platform sets no cookies; a real jar would filter and update on every call.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self.session

    async def close(self) -> None:
        """Refuse further use and close the session if it is ours (idempotent)."""
        if self.closed:
            return
        self.closed = True
        session, self.session = self.session, None
        if session is not None and self.owns_session:
            await session.close()


def check_client_options(
    component_app_id: object,
    base_url: object,
    error_codes: Mapping[int, type[APIError]] | None,
    max_response_bytes: object,
) -> Mapping[int, type[APIError]]:
    """Refuse malformed client options; return the result-code table with the overrides.

    Raises:
        InvalidInputError: Which option is malformed and why.
    """
    text("component_app_id", component_app_id, blank_ok=False)
    if not isinstance(base_url, str):  # its type only: a URL may hold a password
        raise InvalidInputError(f"base_url must be a str, got {type(base_url).__name__}")
    if not base_url.startswith(("http://", "https://")):
        shown = hide_userinfo(base_url)
        raise InvalidInputError(f"base_url must start with http:// or https://: {shown!r}")
    for code, cls in (error_codes or {}).items():
        if not (isinstance(cls, type) and issubclass(cls, APIError)):
            raise InvalidInputError(f"error_codes[{code}] must be an APIError subclass")
    integer("max_response_bytes", max_response_bytes)
    return {**DEFAULT_ERROR_CODES, **(error_codes or {})}
