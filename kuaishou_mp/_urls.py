"""Request URLs: the base URL is checked and split once; each call adds a path and a query.

Parsing a whole URL string is one of yarl's slower operations (several microseconds, more per
call than anything else the SDK does except structuring the answer), and every call's URL is
new because the token is in it. The parts a client's calls share are parsed once here, and a
call's URL is assembled from parts that are already percent-encoded, which yarl takes as they
are.
"""

from __future__ import annotations

import re

from yarl import URL

from .errors import InvalidInputError

__all__ = ["BaseURL", "hide_userinfo"]

_build = URL.build
_USERINFO = re.compile(r"//[^/?#]*@")


class BaseURL:
    """A client's ``base_url``, split into the parts every request URL shares.

    Raises:
        InvalidInputError: ``base_url`` has no host, or has a query or a fragment (endpoint
            paths are appended to it, so neither could mean anything).
    """

    __slots__ = ("_authority", "_path", "_scheme", "shown", "text")

    def __init__(self, base_url: str) -> None:
        self.text = base_url.rstrip("/")
        # For messages and reprs: a password in the base URL is not ours to print.
        self.shown = hide_userinfo(self.text)
        given = hide_userinfo(base_url)
        try:
            url = URL(self.text, encoded=True)
            host, port = url.raw_host, url.port  # yarl checks the port only when asked
        except ValueError:
            host = port = None
        if not host or port is None:
            raise InvalidInputError(f"base_url has no valid host and port: {given!r}")
        if "?" in self.text or "#" in self.text:
            raise InvalidInputError(f"base_url must not have a query or a fragment: {given!r}")
        self._scheme = url.scheme
        self._authority = url.raw_authority
        self._path = url.raw_path.rstrip("/")

    def join(self, path: str, query: str) -> URL:
        """The URL of ``path`` (beginning with ``/``) with ``query``, both percent-encoded."""
        return _build(
            scheme=self._scheme,
            authority=self._authority,
            path=self._path + path,
            query_string=query,
            encoded=True,
        )


def hide_userinfo(url: str) -> str:
    """``url`` with its user and password, if any, shown as ``***``: for messages and reprs."""
    return _USERINFO.sub("//***@", url)
