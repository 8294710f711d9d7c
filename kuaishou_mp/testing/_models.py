"""State kept per authorized mini-program, and the request records."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._faults import Fault

__all__ = [
    "SERVER_DOMAIN_KEYS",
    "FakeAuthorizer",
    "RecordedRequest",
    "default_info",
    "default_server_domains",
    "default_webview_domains",
]

SERVER_DOMAIN_KEYS: tuple[str, ...] = ("request", "socket", "upload_file", "download_file", "udp")
"""The five server-domain lists, in the order the platform answers them."""

_NOT_HOSTNAME = re.compile(r"[^a-z0-9-]+")


def _slug(app_id: str) -> str:
    return _NOT_HOSTNAME.sub("-", app_id.lower()).strip("-") or "app"


def default_info(app_id: str) -> dict[str, Any]:
    """A realistic app-info document (without ``result``/``error_msg``) for ``app_id``."""
    name = f"小程序 {app_id}"
    base = f"https://static.{_slug(app_id)}.example.com"
    return {
        "status": 2,
        "app_name": name,
        "name_audit": {
            "new_name": f"{name} 新版",
            "remaining_times": 2,
            "status": 0,
            "reason": "",
        },
        "app_avatar": f"{base}/avatar.png",
        "avatar_audit": {
            "new_name": f"{base}/avatar-v2.png",
            "remaining_times": 1,
            "status": 1,
            "reason": "",
        },
        "app_intro": f"{name}：一站式生活服务",
        "intro_audit": {
            "new_name": f"{name}：一站式生活服务平台",
            "remaining_times": 5,
            "status": 1,
            "reason": "",
        },
        "subject": {"name": f"{app_id} 网络科技有限公司", "type": 1},
        "app_category": [
            {"category_id": "1,10", "category_name": "电商-家具", "status": 1, "reason": ""},
            {
                "category_id": "1,11",
                "category_name": "电商-母婴",
                "status": 2,
                "reason": "缺少相关资质",
            },
        ],
    }


def default_server_domains(app_id: str) -> dict[str, list[str]]:
    """The server domains a fresh fake authorizer starts with."""
    slug = _slug(app_id)
    return {
        "request": [f"api.{slug}.example.com", f"log.{slug}.example.com"],
        "socket": [],
        "upload_file": [],
        "download_file": [f"cdn.{slug}.example.com"],
        "udp": [],
    }


def default_webview_domains(app_id: str) -> list[str]:
    """The webview domains a fresh fake authorizer starts with."""
    slug = _slug(app_id)
    return [f"www.{slug}.example.com", f"m.{slug}.example.com"]


def normalize_server_domains(domains: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """All five lists as fresh ``list`` objects; missing lists are empty.

    Raises:
        ValueError: an unknown list name.
    """
    unknown = set(domains) - set(SERVER_DOMAIN_KEYS)
    if unknown:
        raise ValueError(f"unknown server-domain lists: {sorted(unknown)}")
    return {key: list(domains.get(key, ())) for key in SERVER_DOMAIN_KEYS}


@attrs.define(eq=False, slots=True)
class FakeAuthorizer:
    """One authorized mini-program inside :class:`FakeKuaishou`: its token and its state.

    ``info``, ``server_domains`` and ``webview_domains`` are generated from the app id on
    first access (so registering 200,000 authorizers stays cheap) and may be read and
    mutated freely by tests. The access token is read-only here: change it with
    :meth:`FakeKuaishou.rotate_token`, :meth:`FakeKuaishou.expire_token` and
    :meth:`FakeKuaishou.revoke_token`, which keep the fake's token index in step.
    """

    app_id: str
    """The mini-program's app id."""
    _access_token: str = attrs.field(alias="access_token", repr=False)
    _info: dict[str, Any] | None = attrs.field(default=None, alias="info", repr=False)
    _server_domains: dict[str, list[str]] | None = attrs.field(
        default=None, alias="server_domains", repr=False
    )
    _webview_domains: list[str] | None = attrs.field(
        default=None, alias="webview_domains", repr=False
    )
    token_expired: bool = False
    """The current token answers 100200108 (access_token expired) while this is set."""
    token_revoked: bool = False
    """The current token answers 100200102 (invalid token) while this is set."""
    # Hot-path state lives here so one token lookup finds everything a request needs.
    _faults: deque[Fault] | None = attrs.field(default=None, init=False, repr=False)
    _arrivals: list[float] | None = attrs.field(default=None, init=False, repr=False)
    _window: deque[float] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def access_token(self) -> str:
        """The current access token (possibly expired or revoked)."""
        return self._access_token

    @property
    def info(self) -> dict[str, Any]:
        """The app-info document answered by ``GET /openapi/mp/auth/app/info``.

        It excludes ``result`` and ``error_msg``, which the fake adds (the document's own
        keys win, so a test can plant any field, even an odd ``result``).
        """
        if self._info is None:
            self._info = default_info(self.app_id)
        return self._info

    @info.setter
    def info(self, document: Mapping[str, Any]) -> None:
        self._info = dict(document)

    @property
    def server_domains(self) -> dict[str, list[str]]:
        """The five server-domain lists (``request``, ``socket``, ``upload_file``, ...)."""
        if self._server_domains is None:
            self._server_domains = default_server_domains(self.app_id)
        return self._server_domains

    @server_domains.setter
    def server_domains(self, domains: Mapping[str, Sequence[str]]) -> None:
        self._server_domains = normalize_server_domains(domains)

    @property
    def webview_domains(self) -> list[str]:
        """The webview (business) domains."""
        if self._webview_domains is None:
            self._webview_domains = default_webview_domains(self.app_id)
        return self._webview_domains

    @webview_domains.setter
    def webview_domains(self, domains: Sequence[str]) -> None:
        self._webview_domains = list(domains)

    @property
    def pending_faults(self) -> tuple[Fault, ...]:
        """Faults queued for this app and not consumed yet, next first."""
        return tuple(self._faults) if self._faults else ()


@attrs.frozen(slots=True)
class RecordedRequest:
    """One request the fake received (kept when ``record_requests`` is on)."""

    method: str
    """HTTP method."""
    path: str
    """URL path, without the query string."""
    query: dict[str, str]
    """Query parameters (the last value wins for a repeated name)."""
    body: Any | None
    """The parsed JSON body, the raw text when it is not JSON, ``None`` when empty."""
    app_id: str | None
    """The app the token belongs (or belonged) to; ``None`` for unknown or missing tokens."""
    at: float
    """Arrival time, :func:`time.monotonic`."""
    outcome: str
    """``"ok"``, ``"result:<code>"``, ``"http:<status>"``, or a fault kind such as
    ``"drop"``, ``"hang"``, ``"malformed"``, ``"raw"``, ``"huge"``, ``"endless"``."""
    content_type: str | None = None
    """The request's ``Content-Type`` when it had a body, else ``None``."""
