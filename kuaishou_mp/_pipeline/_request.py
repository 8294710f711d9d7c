"""The request object: one per logical call, built once by a facade and passed down the layers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from .._callstats import CallStats
from .._endpoints import Endpoint
from ..models import Authorizer
from ..retry import RetryPolicy

__all__ = ["Request"]


class Request:
    """Everything the layers need to know about one call (retries and a token refresh included).

    ``authorizer`` is what the caller gave (an :class:`Authorizer`, a bare app id, or ``None`` for
    calls made with the component's own credentials); the token layer fills ``app_id``, ``token``
    and ``url`` from it. ``secrets`` are masked in every message the call produces; the token is
    masked as well, whatever its value at the time.
    """

    __slots__ = (
        "app_id",
        "authorizer",
        "body",
        "deadline",
        "endpoint",
        "payload",
        "policy",
        "secrets",
        "sent_at",
        "session",
        "stats",
        "token",
        "url",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        authorizer: Authorizer | str | None,
        body: Mapping[str, Any] | None,
        payload: bytes | None,
        stats: CallStats,
        *,
        url: URL | None = None,
        app_id: str | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.endpoint = endpoint
        self.authorizer = authorizer
        self.body = body  # kept beside its encoding: the delete confirmation reads it
        self.payload = payload
        self.stats = stats
        self.url = url
        self.app_id = app_id
        self.token: str | None = None
        self.secrets = secrets
        self.deadline: float | None = None  # monotonic; set by the retry layer
        self.policy: RetryPolicy | None = None  # set by the retry layer
        self.sent_at = 0.0  # monotonic; when the current attempt left the limiter layer
        self.session: aiohttp.ClientSession | None = None  # set by the token layer

    def scrubbed(self) -> tuple[str, ...]:
        """Every secret of this call: the given ones and the current token."""
        token = self.token
        return self.secrets if token is None else (token, *self.secrets)

    def __repr__(self) -> str:
        # Never the token, the URL (which carries it) or the body.
        return f"<Request {self.endpoint.name} app_id={self.app_id!r}>"
