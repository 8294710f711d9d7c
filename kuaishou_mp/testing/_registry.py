"""The fake's registry of authorizers and their tokens: the only code that writes their state."""

from __future__ import annotations

import collections
import gc
import random
import secrets
import types
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ._faults import Fault
from ._models import (
    default_info,
    default_server_domains,
    default_webview_domains,
    normalize_server_domains,
)

__all__ = ["CODE_BAD_TOKEN", "CODE_TOKEN_EXPIRED", "FakeAuthorizer", "Registry"]

CODE_BAD_TOKEN = 100200102
CODE_TOKEN_EXPIRED = 100200108

_TOKEN_BYTES = 16
_TOKEN_HEX = 2 * _TOKEN_BYTES


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


class Registry:
    """Authorizers by app id and by token (current and dead), and their per-app serving state.

    Args:
        rng: Draws the tokens (reproducible when seeded); ``None`` uses :mod:`secrets`.
    """

    def __init__(self, rng: random.Random | None) -> None:
        self._rng = rng
        self._by_app: dict[str, FakeAuthorizer] = {}
        self._by_token: dict[str, FakeAuthorizer] = {}
        # Tokens no longer current: rotated-out (expired) or revoked-then-rotated.
        self._dead_tokens: dict[str, tuple[FakeAuthorizer, int]] = {}
        self._next_index: dict[str, int] = {}
        self._apps_with_arrivals: set[FakeAuthorizer] = set()

    # ------------------------------------------------------------------ authorizers

    @property
    def view(self) -> Mapping[str, FakeAuthorizer]:
        """Read-only view of the authorizers by app id."""
        return types.MappingProxyType(self._by_app)

    def __iter__(self) -> Iterator[FakeAuthorizer]:
        return iter(self._by_app.values())

    def authorizer(self, app_id: str) -> FakeAuthorizer:
        """The authorizer registered as ``app_id``.

        Raises:
            KeyError: no such app.
        """
        try:
            return self._by_app[app_id]
        except KeyError:
            raise KeyError(f"unknown authorizer app id: {app_id!r}") from None

    def _token_block(self, n: int) -> str:
        if self._rng is not None:
            return self._rng.randbytes(_TOKEN_BYTES * n).hex()
        return secrets.token_bytes(_TOKEN_BYTES * n).hex()

    def _fresh_token(self) -> str:
        while True:
            token = self._token_block(1)
            if token not in self._by_token and token not in self._dead_tokens:
                return token

    def _next_app_id(self, prefix: str) -> str:
        index = self._next_index.get(prefix, 1)
        app_id = f"{prefix}{index:08d}"
        while app_id in self._by_app:
            index += 1
            app_id = f"{prefix}{index:08d}"
        self._next_index[prefix] = index + 1
        return app_id

    def add(
        self,
        app_id: str | None,
        access_token: str | None,
        *,
        info: Mapping[str, Any] | None,
        server_domains: Mapping[str, Sequence[str]] | None,
        webview_domains: Sequence[str] | None,
    ) -> FakeAuthorizer:
        """Register one authorizer (see :meth:`FakeKuaishou.add_authorizer`)."""
        if app_id is None:
            app_id = self._next_app_id("ks")
        elif app_id in self._by_app:
            raise ValueError(f"authorizer {app_id!r} already registered")
        if access_token is None:
            access_token = self._fresh_token()
        elif access_token in self._by_token or access_token in self._dead_tokens:
            raise ValueError("access token already in use")
        auth = FakeAuthorizer(
            app_id,
            access_token,
            info=dict(info) if info is not None else None,
            server_domains=(
                normalize_server_domains(server_domains) if server_domains is not None else None
            ),
            webview_domains=list(webview_domains) if webview_domains is not None else None,
        )
        self._by_app[app_id] = auth
        self._by_token[access_token] = auth
        return auth

    def add_many(self, n: int, prefix: str) -> list[FakeAuthorizer]:
        """Register ``n`` authorizers (see :meth:`FakeKuaishou.add_authorizers`)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        block = self._token_block(n)
        tokens = [block[k : k + _TOKEN_HEX] for k in range(0, n * _TOKEN_HEX, _TOKEN_HEX)]
        by_app = self._by_app
        by_token = self._by_token
        dead = self._dead_tokens
        if not (by_token.keys().isdisjoint(tokens) and dead.keys().isdisjoint(tokens)):
            tokens = [
                t if t not in by_token and t not in dead else self._fresh_token() for t in tokens
            ]
        id_format = prefix.replace("%", "%%") + "%08d"
        index = self._next_index.get(prefix, 1)
        app_ids = [id_format % i for i in range(index, index + n)]
        index += n
        while not by_app.keys().isdisjoint(app_ids):
            app_ids = [app_id for app_id in app_ids if app_id not in by_app]
            more = [id_format % i for i in range(index, index + n - len(app_ids))]
            index += len(more)
            app_ids.extend(more)
        # The collector would rescan the growing heap again and again while 10^5 objects
        # are born; nothing here creates cycles.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            created = list(map(FakeAuthorizer, app_ids, tokens))
            by_app.update(zip(app_ids, created, strict=True))
            by_token.update(zip(tokens, created, strict=True))
        finally:
            if gc_was_enabled:
                gc.enable()
        self._next_index[prefix] = index
        return created

    def set_info(self, auth: FakeAuthorizer, document: Mapping[str, Any]) -> None:
        """Replace the app-info document."""
        auth.info = document

    def expire(self, auth: FakeAuthorizer) -> None:
        """The current token answers ``100200108`` (expired)."""
        auth.token_expired = True

    def revoke(self, auth: FakeAuthorizer) -> None:
        """The current token answers ``100200102`` for good."""
        auth.token_revoked = True

    def rotate(self, auth: FakeAuthorizer, new_token: str | None) -> str:
        """Issue a new valid token (see :meth:`FakeKuaishou.rotate_token`) and return it."""
        if new_token is None:
            new_token = self._fresh_token()
        elif new_token in self._by_token or new_token in self._dead_tokens:
            raise ValueError("access token already in use")
        old = auth.access_token
        del self._by_token[old]
        self._dead_tokens[old] = (
            auth,
            CODE_BAD_TOKEN if auth.token_revoked else CODE_TOKEN_EXPIRED,
        )
        auth._access_token = new_token
        auth.token_expired = False
        auth.token_revoked = False
        self._by_token[new_token] = auth
        return new_token

    def lookup(self, token: str) -> tuple[FakeAuthorizer | None, int]:
        """The authorizer a token belongs (or belonged) to, and ``0`` or its dead token's code."""
        auth = self._by_token.get(token)
        if auth is not None:
            return auth, 0
        dead = self._dead_tokens.get(token)
        if dead is None:
            return None, 0
        return dead

    def owner(self, token: str | None) -> str | None:
        """The app id a token belongs (or belonged) to, or ``None``."""
        if token is None:
            return None
        auth, _ = self.lookup(token)
        return auth.app_id if auth is not None else None

    # ------------------------------------------------------------------ per-app serving state

    def queue_faults(self, auth: FakeAuthorizer, faults: Iterable[Fault]) -> None:
        """Queue faults for the app's next requests."""
        if auth._faults is None:
            auth._faults = collections.deque()
        auth._faults.extend(faults)

    def clear_faults(self, auth: FakeAuthorizer) -> None:
        """Drop the app's queued faults."""
        auth._faults = None

    def next_fault(self, auth: FakeAuthorizer) -> Fault | None:
        """Take the app's next queued fault, if any."""
        return auth._faults.popleft() if auth._faults else None

    def note_arrival(self, auth: FakeAuthorizer, at: float) -> None:
        """Keep a request's arrival time."""
        if auth._arrivals is None:
            auth._arrivals = []
            self._apps_with_arrivals.add(auth)
        auth._arrivals.append(at)

    def arrivals(self, auth: FakeAuthorizer) -> list[float]:
        """The app's arrival times, oldest first (a copy)."""
        return list(auth._arrivals or ())

    def forget_arrivals(self) -> None:
        """Forget every app's arrival times."""
        for auth in self._apps_with_arrivals:
            auth._arrivals = None
        self._apps_with_arrivals.clear()

    def admit(self, auth: FakeAuthorizer, limit: float, window: float, now: float) -> bool:
        """Whether the app had fewer than ``limit`` admitted requests in the ``window`` seconds
        before ``now``; if so the request counts as admitted."""
        admitted = auth._window
        if admitted is None:
            admitted = auth._window = collections.deque()
        horizon = now - window
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        if len(admitted) >= limit:
            return False
        admitted.append(now)
        return True
