"""The platform's data as frozen attrs models.

Attribute names are the platform's wire names, so its documentation maps one to one. Models are
immutable and hashable; lists arrive as tuples. Parsing is forward compatible: unknown fields are
ignored, and an enum value the platform adds later is kept as a pseudo-member (``int(x) == 9``
works, ``x.name == "UNKNOWN_9"``) rather than failing the call.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = [
    "AppCategory",
    "AppInfo",
    "AppStatus",
    "AuditInfo",
    "AuditStatus",
    "Authorizer",
    "DomainAction",
    "ServerDomains",
    "Subject",
    "SubjectType",
    "WebviewDomains",
]


class _OpenIntEnum(enum.IntEnum):
    """An IntEnum that keeps values it does not know instead of raising."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # Not cached in the value map: a hostile response must not grow it without bound.
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None

    @property
    def is_known(self) -> bool:
        """Whether this value is one the SDK knows by name."""
        return self._name_ in type(self).__members__


class AppStatus(_OpenIntEnum):
    """Mini-program status (``status`` in app info)."""

    INCOMPLETE = 1
    """未完善: basic information not complete."""
    ONLINE = 2
    """已上线: published."""
    OFFLINE = 3
    """未上线: not published."""


class AuditStatus(_OpenIntEnum):
    """Review status of a submitted name, avatar, introduction or category."""

    IN_REVIEW = 0
    APPROVED = 1
    REJECTED = 2


class SubjectType(_OpenIntEnum):
    """Legal subject type."""

    ENTERPRISE = 1


class DomainAction(str, enum.Enum):
    """What a domain call does: ``add``, ``delete``, ``set`` (overwrite) or ``get``."""

    ADD = "add"
    DELETE = "delete"
    SET = "set"
    GET = "get"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Authorizer:
    """An authorized mini-program: its app id and its access token.

    The token never appears in ``repr`` or ``str``.

    Args:
        app_id: The mini-program's app id.
        access_token: Its authorizer access token (a secret, lives about two hours).
    """

    app_id: str
    access_token: str = attrs.field(repr=False)


@attrs.frozen
class AuditInfo:
    """Review of a submitted new name, avatar or introduction.

    The platform names the submitted value ``new_name`` for all three.
    """

    new_name: str = ""
    remaining_times: int | None = None
    status: AuditStatus | None = None
    reason: str = ""


@attrs.frozen
class Subject:
    """The mini-program's legal subject."""

    name: str = ""
    type: SubjectType | None = None


@attrs.frozen
class AppCategory:
    """A service category and its review state.

    ``category_id`` is a comma-separated path (``"1,10"``) and ``category_name`` the level names
    joined by ``-`` (``"电商-家具"``); :attr:`id_path` and :attr:`name_path` split them.
    """

    category_id: str = ""
    category_name: str = ""
    status: AuditStatus | None = None
    reason: str = ""

    @property
    def id_path(self) -> tuple[str, ...]:
        """The category id split into its levels: ``"1,10"`` -> ``("1", "10")``."""
        return tuple(p for p in self.category_id.split(",") if p)

    @property
    def name_path(self) -> tuple[str, ...]:
        """The category name split into its levels: ``"电商-家具"`` -> ``("电商", "家具")``."""
        return tuple(p for p in self.category_name.split("-") if p)


@attrs.frozen
class AppInfo:
    """A mini-program's basic information (``GET /openapi/mp/auth/app/info``).

    Nested objects the platform leaves out (or sends as ``null``) are ``None``; missing strings
    are empty; a missing category list is empty.
    """

    status: AppStatus | None = None
    app_name: str = ""
    name_audit: AuditInfo | None = None
    app_avatar: str = ""
    avatar_audit: AuditInfo | None = None
    app_intro: str = ""
    intro_audit: AuditInfo | None = None
    subject: Subject | None = None
    app_category: tuple[AppCategory, ...] = ()


def _domains(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("a domain list must be a list of strings, not a single string")
    return tuple(value)


@attrs.frozen
class ServerDomains:
    """The five server domain lists of a mini-program, as configured after a call."""

    request: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    socket: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    upload_file: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    download_file: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    udp: tuple[str, ...] = attrs.field(default=(), converter=_domains)

    LISTS = ("request", "socket", "upload_file", "download_file", "udp")
    """The names of the lists, in wire order."""


@attrs.frozen
class WebviewDomains:
    """The webview (business) domains of a mini-program, as configured after a call."""

    webview: tuple[str, ...] = attrs.field(default=(), converter=_domains)

    LISTS = ("webview",)
    """The names of the lists."""
