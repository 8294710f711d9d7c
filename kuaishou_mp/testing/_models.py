"""The request records, and the state a fake authorizer starts with."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..models import ServerDomains

__all__ = [
    "SERVER_DOMAIN_KEYS",
    "RecordedRequest",
    "default_info",
    "default_server_domains",
    "default_webview_domains",
]

SERVER_DOMAIN_KEYS: tuple[str, ...] = ServerDomains.LISTS
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
    domains: dict[str, list[str]] = {name: [] for name in SERVER_DOMAIN_KEYS}
    domains["request"] += [f"api.{slug}.example.com", f"log.{slug}.example.com"]
    domains["download_file"] += [f"cdn.{slug}.example.com"]
    return domains


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
