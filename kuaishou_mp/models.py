"""The platform's data as frozen attrs models.

Attribute names are the platform's wire names, so its documentation maps one to one. Models are
immutable and hashable; lists arrive as tuples. Parsing is forward compatible: unknown fields are
ignored, and an enum value the platform adds later is kept as a pseudo-member (``int(x) == 9``
works, ``x.name == "UNKNOWN_9"``) rather than failing the call.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from ._open_enum import OpenIntEnum

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


class AppStatus(OpenIntEnum):
    """Mini-program status (``status`` in app info).

    Like every enum of the models, a value the platform adds later is kept as a member named
    ``UNKNOWN_<value>`` (``int(status)`` works, ``status.is_known`` is ``False``).
    """

    INCOMPLETE = 1
    """未完善: basic information not complete."""
    ONLINE = 2
    """已上线: published."""
    OFFLINE = 3
    """未上线: not published."""


class AuditStatus(OpenIntEnum):
    """Review status of a submitted name, avatar, introduction or category.

    Unknown values are kept as ``UNKNOWN_<value>`` members, as for :class:`AppStatus`.
    """

    IN_REVIEW = 0
    """审核中: submitted, not reviewed yet."""
    APPROVED = 1
    """审核通过: approved."""
    REJECTED = 2
    """审核驳回: rejected; the ``reason`` field says why."""


class SubjectType(OpenIntEnum):
    """Legal subject type.

    Unknown values are kept as ``UNKNOWN_<value>`` members, as for :class:`AppStatus`.
    """

    ENTERPRISE = 1
    """企业: a company."""


class DomainAction(str, enum.Enum):
    """What a domain call does: ``add``, ``delete``, ``set`` (overwrite) or ``get``.

    The plain strings work too wherever an action is expected.
    """

    ADD = "add"
    """Add the given domains to their lists; domains already present are left as they are."""
    DELETE = "delete"
    """Remove the given domains; the platform answers 403106 if one of them is not configured."""
    SET = "set"
    """Overwrite the lists that are given with exactly these domains."""
    GET = "get"
    """Read the current lists; no lists are sent."""

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

    Attributes:
        new_name: The submitted value: the new name, the new avatar's URL or the new
            introduction.
        remaining_times: How many more changes of this kind are allowed, or ``None`` when not
            sent.
        status: The review state, or ``None`` when not sent.
        reason: Why the submission was rejected; empty otherwise.
    """

    new_name: str = ""
    remaining_times: int | None = None
    status: AuditStatus | None = None
    reason: str = ""


@attrs.frozen
class Subject:
    """The mini-program's legal subject (主体).

    Attributes:
        name: The subject's registered name.
        type: The kind of subject, or ``None`` when not sent.
    """

    name: str = ""
    type: SubjectType | None = None


@attrs.frozen
class AppCategory:
    """A service category and its review state.

    ``category_id`` is a comma-separated path (``"1,10"``) and ``category_name`` the level names
    joined by ``-`` (``"电商-家具"``); :attr:`id_path` and :attr:`name_path` split them.

    Attributes:
        category_id: The category's id path, levels separated by commas.
        category_name: The category's name path, levels separated by ``-``.
        status: The review state of the category, or ``None`` when not sent.
        reason: Why the category was rejected; empty otherwise.
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

    Attributes:
        status: Whether the mini-program is published, or ``None`` when not sent.
        app_name: The current name.
        name_audit: The review of a submitted new name, if any.
        app_avatar: The current avatar's URL.
        avatar_audit: The review of a submitted new avatar, if any.
        app_intro: The current introduction.
        intro_audit: The review of a submitted new introduction, if any.
        subject: The legal subject, if sent.
        app_category: The service categories and their review states.
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
    """The five server domain lists of a mini-program, as configured after a call.

    Also the desired state for reconciliation: build one with keyword arguments of the same
    names (any iterable of host names; stored as tuples). Lists not given are empty.

    Attributes:
        request: Domains the mini-program may call with ``request``.
        socket: Domains for ``socket`` (WebSocket) connections.
        upload_file: Domains for ``uploadFile``.
        download_file: Domains for ``downloadFile``.
        udp: Domains for UDP.

    Raises:
        TypeError: A list was given as a single string.
    """

    request: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    socket: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    upload_file: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    download_file: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    udp: tuple[str, ...] = attrs.field(default=(), converter=_domains)

    LISTS = ("request", "socket", "upload_file", "download_file", "udp")
    """The names of the lists, in wire order."""


@attrs.frozen
class WebviewDomains:
    """The webview (business) domains of a mini-program, as configured after a call.

    Also the desired state for reconciliation: ``WebviewDomains(webview=["h5.example.com"])``.

    Attributes:
        webview: Domains the mini-program's ``web-view`` may open (业务域名).

    Raises:
        TypeError: The list was given as a single string.
    """

    webview: tuple[str, ...] = attrs.field(default=(), converter=_domains)

    LISTS = ("webview",)
    """The names of the lists."""
