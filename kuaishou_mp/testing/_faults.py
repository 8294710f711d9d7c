"""Fault descriptions the fake platform can be told to answer with."""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Literal

import attrs

from ._json import dumps

__all__ = ["Fault", "FaultKind"]

FaultKind = Literal[
    "http", "result", "drop", "drop_after", "hang", "delay", "malformed", "raw", "huge", "endless"
]
"""The kinds of :class:`Fault`."""

MALFORMED_BODY = b'{"result": 1, "app_na'

# A body that is valid JSON whatever its length, so "huge" tests a size limit, not a parser.
HUGE_PREFIX = b'{"result":1,"error_msg":"success","padding":"'
HUGE_SUFFIX = b'"}'
HUGE_MIN_SIZE = len(HUGE_PREFIX) + len(HUGE_SUFFIX)


def _html_page(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    title = f"{status} {phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def _check_status(status: int) -> None:
    if not 100 <= status <= 599:
        raise ValueError(f"HTTP status must be in 100..599, got {status}")


def _check_seconds(seconds: float) -> None:
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")


@attrs.frozen(slots=True)
class Fault:
    """One abnormal answer the fake gives instead of (or before) the normal one.

    Build faults with the constructors (:meth:`http`, :meth:`result`, :meth:`drop`,
    :meth:`hang`, :meth:`delay`, :meth:`malformed`, :meth:`raw`, :meth:`huge`,
    :meth:`endless`) and queue them with :meth:`FakeKuaishou.inject`.

    Faults model the gateway and the network: they fire before the platform looks at the
    request, so a faulted request changes no state, except :meth:`hang` and :meth:`delay`,
    which only hold the request back and then let it be processed normally.
    """

    kind: FaultKind
    """Which kind of fault this is."""
    status: int = 200
    """HTTP status of the answer (``http``, ``raw``)."""
    body: bytes = b""
    """Body bytes sent as-is (``http``, ``result``, ``malformed``, ``raw``)."""
    content_type: str = "application/json"
    """``Content-Type`` header of the answer (``http``, ``raw``)."""
    code: int = 1
    """Platform result code (``result``)."""
    seconds: float = 0.0
    """How long the request is held (``hang``, ``delay``)."""
    size: int = 0
    """Body size in bytes (``huge``)."""

    @classmethod
    def http(
        cls, status: int = 503, body: bytes | str | None = None, content_type: str = "text/html"
    ) -> Fault:
        """An HTTP error page, like a gateway in front of the platform sends.

        Args:
            status: HTTP status code.
            body: response body; a small nginx-style HTML page for ``status`` when omitted.
            content_type: the ``Content-Type`` header.
        """
        _check_status(status)
        if body is None:
            data = _html_page(status)
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = bytes(body)
        return cls("http", status=status, body=data, content_type=content_type)

    @classmethod
    def result(cls, code: int, error_msg: str = "injected") -> Fault:
        """An HTTP 200 JSON answer ``{"result": code, "error_msg": error_msg}``."""
        return cls("result", code=code, body=dumps({"result": code, "error_msg": error_msg}))

    @classmethod
    def drop(cls) -> Fault:
        """Close the TCP connection without sending any response."""
        return cls("drop")

    @classmethod
    def drop_after_applying(cls) -> Fault:
        """Process the request (its changes take effect), then close the connection unanswered.

        The answer is lost on the way back: the client cannot tell whether its call happened.
        """
        return cls("drop_after")

    @classmethod
    def hang(cls, seconds: float = 3600.0) -> Fault:
        """Hold the request for ``seconds`` before processing and answering it.

        The request is not processed while it hangs, so a client that gives up leaves no
        trace in the fake's state. :meth:`FakeKuaishou.stop` cancels hanging requests.
        """
        _check_seconds(seconds)
        return cls("hang", seconds=seconds)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Hold the request for ``seconds``, then process and answer it normally."""
        _check_seconds(seconds)
        return cls("delay", seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200, ``application/json``, body truncated mid-document."""
        return cls("malformed", body=MALFORMED_BODY)

    @classmethod
    def raw(
        cls, body: bytes, *, status: int = 200, content_type: str = "application/json"
    ) -> Fault:
        """Any bytes with any status and content type, for hostile-response tests."""
        _check_status(status)
        return cls("raw", status=status, body=bytes(body), content_type=content_type)

    @classmethod
    def huge(cls, size_bytes: int) -> Fault:
        """A valid JSON body of exactly ``size_bytes`` bytes, streamed with a Content-Length.

        Raises:
            ValueError: ``size_bytes`` is too small to hold the JSON skeleton (47 bytes).
        """
        if size_bytes < HUGE_MIN_SIZE:
            raise ValueError(f"size_bytes must be >= {HUGE_MIN_SIZE}, got {size_bytes}")
        return cls("huge", size=size_bytes)

    @classmethod
    def endless(cls) -> Fault:
        """HTTP 200 whose body never ends: chunks until the client leaves or the fake stops."""
        return cls("endless")

    @property
    def outcome(self) -> str:
        """The outcome string recorded and counted for a request answered by this fault.

        ``delay`` has none of its own: the request's normal outcome is recorded.
        """
        kind = self.kind
        if kind == "http":
            return f"http:{self.status}"
        if kind == "result":
            return f"result:{self.code}"
        return kind
