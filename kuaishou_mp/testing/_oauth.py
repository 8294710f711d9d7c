"""The fake platform's authorization (OAuth) side: tickets, component tokens, codes, tokens."""

from __future__ import annotations

import asyncio
import collections
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from time import monotonic
from typing import Any, Final, Protocol

import attrs
from aiohttp import web

from ._json import dumps
from ._registry import FakeAuthorizer
from ._serving import JSON, Answer, ServingCore

__all__ = [
    "AUTHORIZER_ACCESS_TOKEN_PATH",
    "COMPONENT_ACCESS_TOKEN_PATH",
    "OAUTH_PATHS",
    "PRE_AUTH_CODE_PATH",
    "RE_AUTHORIZATION_CODE_PATH",
    "START_PUSH_TICKET_PATH",
    "FakeOAuth",
]

START_PUSH_TICKET_PATH: Final = "/mp/tp/oauth/start_push_ticket"
COMPONENT_ACCESS_TOKEN_PATH: Final = "/mp/tp/oauth/access_token"
PRE_AUTH_CODE_PATH: Final = "/mp/tp/oauth/pre_auth_code"
AUTHORIZER_ACCESS_TOKEN_PATH: Final = "/mp/tp/oauth/authorizer_access_token"
RE_AUTHORIZATION_CODE_PATH: Final = "/mp/tp/oauth/re_authorization_code"
OAUTH_PATHS: Final = (
    START_PUSH_TICKET_PATH,
    COMPONENT_ACCESS_TOKEN_PATH,
    PRE_AUTH_CODE_PATH,
    AUTHORIZER_ACCESS_TOKEN_PATH,
    RE_AUTHORIZATION_CODE_PATH,
)
"""The five documented OAuth paths the fake serves (``GET`` only)."""

CODE_BAD_REQUEST: Final = 100200100
CODE_BAD_CLIENT: Final = 100200101
CODE_REFUSED: Final = 100200102
CODE_EXPIRED: Final = 100200108
CODE_REFRESH_EXPIRED: Final = 100200113

DEFAULT_PERMISSIONS: Final[tuple[Mapping[str, Any], ...]] = (
    {"id": 1, "category": "基础信息", "description": "获取小程序基本信息"},
    {"id": 2, "category": "开发管理", "description": "管理服务器域名与业务域名"},
)


class _Pushes(Protocol):
    def started(self, ticket: str) -> None: ...

    def authorized(self, app_id: str, code: str, expires_in: int) -> None: ...


class _Platform(Protocol):
    """What the OAuth side needs from the fake platform (:class:`FakeKuaishou`'s public API)."""

    @property
    def component_app_id(self) -> str: ...

    @property
    def authorizers(self) -> Mapping[str, FakeAuthorizer]: ...

    @property
    def push(self) -> _Pushes: ...

    def authorizer(self, app_id: str) -> FakeAuthorizer: ...

    def add_authorizer(self, app_id: str | None = None) -> FakeAuthorizer: ...

    def rotate_token(self, app_id: str) -> str: ...

    def expire_token(self, app_id: str) -> None: ...


def _error(code: int, message: str) -> Answer:
    return dumps({"result": code, "errorMsg": message}), f"result:{code}"


def _ok(**fields: Any) -> Answer:
    return dumps({"result": 1, "errorMsg": "success", **fields}), "ok"


def _wire_seconds(ttl: float) -> int:
    return max(1, math.ceil(ttl))


@attrs.define
class _Code:
    app_id: str
    expires_at: float


class FakeOAuth:
    """The authorization endpoints of :class:`~kuaishou_mp.testing.FakeKuaishou`.

    Reached as ``fake.oauth``. It serves the five documented ``GET`` endpoints under
    ``/mp/tp/oauth/`` with camelCase answers and ``errorMsg``, and issues authorizer tokens
    that the basic-info endpoints accept (through the fake's own token registry).

    What the platform does not document, the fake decides (and tests may rely on):

    * tickets: :meth:`push_ticket` issues one without pushing it; every ticket issued stays
      valid; ``start_push_ticket`` checks the app id and secret and issues a first ticket,
      which :class:`~kuaishou_mp.testing.FakePush` (``fake.push``) POSTs to ``fake.push.url``
      when set, followed by one every ``fake.push.interval`` seconds;
    * :meth:`authorize` also pushes an ``AUTHORIZED`` event when ``fake.push.url`` is set;
    * every ``access_token`` call issues a new component token; older ones stay valid until
      they expire (as documented);
    * an authorization code (from :meth:`authorize` or ``re_authorization_code``) is spent by
      the exchange that uses it; exchanging it issues a new access token for the app, and the
      app's previous token then answers ``100200108`` on the basic-info endpoints (as after
      :meth:`FakeKuaishou.rotate_token`), and a new refresh token, whose expiry ends the
      authorization: ``re_authorization_code`` then answers ``100200113``;
    * any app registered with :meth:`FakeKuaishou.add_authorizer` counts as authorized;
    * errors: missing parameters ``100200100``; a wrong app id or secret ``100200101``; an
      unknown ticket or component token ``100200102``; an expired component token
      ``100200108``; an unknown, spent or expired code, or an app that never authorized,
      ``100200100``.

    Expiry uses :meth:`now`: the fake's monotonic clock plus :meth:`advance`. An issued access
    token turns expired on the basic-info endpoints when its time comes (a timer on the event
    loop) or when :meth:`advance` passes it. Answers carry ``expiresIn`` as whole seconds
    (rounded up, at least 1), so TTLs below a second work for fast tests.

    The global fault queue (``fake.inject(None, ...)``) applies to these endpoints too.
    """

    def __init__(self, fake: _Platform, serving: ServingCore, *, component_app_secret: str) -> None:
        self._fake = fake
        self._serving = serving
        self.component_app_secret: str = component_app_secret
        """The secret requests must carry with the component app id. Settable."""
        self.component_token_ttl: float = 7200.0
        """Seconds a component access token lives. Settable."""
        self.pre_auth_code_ttl: float = 600.0
        """Seconds a pre-authorization code lives. Settable."""
        self.access_token_ttl: float = 7200.0
        """Seconds an issued authorizer access token lives. Settable."""
        self.refresh_token_ttl: float = 2592000.0
        """Seconds an issued refresh token (and with it the authorization) lives. Settable."""
        self.authorization_code_ttl: float = 3600.0
        """Seconds an authorization code lives. Settable."""
        self.push_started: bool = False
        """Whether ``start_push_ticket`` succeeded."""
        self.exchanges: collections.Counter[str] = collections.Counter()
        """Successful code exchanges (``authorizer_access_token``) per authorizer app id."""
        self.recoveries: collections.Counter[str] = collections.Counter()
        """Successful ``re_authorization_code`` calls per authorizer app id."""
        self.component_tokens_issued: int = 0
        """Component access tokens issued so far."""
        self._offset = 0.0
        self._tickets: set[str] = set()
        self._ticket: str | None = None
        self._component_tokens: dict[str, float] = {}
        self._pre_auth_codes: dict[str, float] = {}
        self._codes: dict[str, _Code] = {}
        self._permissions: dict[str, list[dict[str, Any]]] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._authorized_until: dict[str, float] = {}
        self._access_expiry: dict[str, tuple[str, float]] = {}
        self._timers: set[asyncio.TimerHandle] = set()

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The fake's clock for expiry: :func:`time.monotonic` plus what :meth:`advance` added."""
        return monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward: whatever expires meanwhile is expired at once.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
        self._sweep()

    # ------------------------------------------------------------------ test controls

    @property
    def ticket(self) -> str | None:
        """The latest ticket issued (what the platform last pushed), or ``None``."""
        return self._ticket

    def push_ticket(self) -> str:
        """Issue a new component ticket, as the platform's 10-minute push would; returns it."""
        ticket = "ticket_" + secrets.token_hex(16)
        self._tickets.add(ticket)
        self._ticket = ticket
        return ticket

    def authorize(
        self,
        app_id: str | None = None,
        *,
        pre_auth_code: str | None = None,
        permissions: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Act out a mini-program's administrator authorizing you; returns the authorization code.

        Registers the app with :meth:`FakeKuaishou.add_authorizer` when it is new.

        Args:
            app_id: The mini-program; a new one when omitted.
            pre_auth_code: Checked (must be issued and unexpired) and spent when given.
            permissions: The granted permissions (``{id, category, description}`` objects);
                two basic ones when omitted.

        Raises:
            ValueError: ``pre_auth_code`` is unknown or expired.
        """
        if pre_auth_code is not None:
            expires_at = self._pre_auth_codes.pop(pre_auth_code, None)
            if expires_at is None or self.now() >= expires_at:
                raise ValueError("unknown or expired pre-authorization code")
        fake = self._fake
        if app_id is None or app_id not in fake.authorizers:
            app_id = fake.add_authorizer(app_id).app_id
        self._permissions[app_id] = [
            dict(p) for p in (permissions if permissions is not None else DEFAULT_PERMISSIONS)
        ]
        self._authorized_until.pop(app_id, None)
        code = self._issue_code(app_id)
        self._fake.push.authorized(app_id, code, _wire_seconds(self.authorization_code_ttl))
        return code

    def expire_authorization(self, app_id: str) -> None:
        """End ``app_id``'s authorization (its refresh token expired): recovering a code for it
        answers ``100200113`` until it authorizes again.

        Raises:
            KeyError: Unknown app id.
        """
        self._fake.authorizer(app_id)
        self._authorized_until[app_id] = -math.inf

    def refresh_token(self, app_id: str) -> str | None:
        """The refresh token last issued to ``app_id``, or ``None``."""
        return self._refresh_tokens.get(app_id)

    # ------------------------------------------------------------------ internals

    def _issue_code(self, app_id: str) -> str:
        code = "code_" + secrets.token_hex(16)
        self._codes[code] = _Code(app_id, self.now() + self.authorization_code_ttl)
        return code

    def _issue_access_token(self, app_id: str) -> str:
        fake = self._fake
        if app_id in fake.authorizers:
            token = fake.rotate_token(app_id)
        else:  # pragma: no cover - codes are only issued for registered apps
            token = fake.add_authorizer(app_id).access_token
        ttl = self.access_token_ttl
        self._access_expiry[token] = (app_id, self.now() + ttl)
        handle = asyncio.get_running_loop().call_later(max(ttl, 0.0), self._timer_fired)
        self._timers.add(handle)
        return token

    def _timer_fired(self) -> None:
        now = asyncio.get_running_loop().time()
        self._timers = {h for h in self._timers if h.when() > now and not h.cancelled()}
        self._sweep()

    def _sweep(self) -> None:
        now = self.now()
        fake = self._fake
        for token, (app_id, expires_at) in list(self._access_expiry.items()):
            if now < expires_at:
                continue
            del self._access_expiry[token]
            auth = fake.authorizers.get(app_id)
            if auth is not None and auth.access_token == token:
                fake.expire_token(app_id)

    def cancel_timers(self) -> None:
        """Cancel the expiry timers of the issued access tokens (the fake is stopping)."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    # ------------------------------------------------------------------ serving

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Add the five OAuth routes (``GET``; other methods answer HTTP 405) to ``router``."""
        handlers: dict[str, Callable[[Mapping[str, str]], tuple[Answer, str | None]]] = {
            START_PUSH_TICKET_PATH: self._start_push_ticket,
            COMPONENT_ACCESS_TOKEN_PATH: self._component_access_token,
            PRE_AUTH_CODE_PATH: self._pre_auth_code,
            AUTHORIZER_ACCESS_TOKEN_PATH: self._authorizer_access_token,
            RE_AUTHORIZATION_CODE_PATH: self._re_authorization_code,
        }
        for path, process in handlers.items():
            name = "endpoint:oauth_" + path.rsplit("/", 1)[1]
            resource = router.add_resource(path)
            resource.add_route("GET", self._handler(name, process))
            resource.add_route("*", self._wrong_method(name))

    def _handler(
        self, name: str, process: Callable[[Mapping[str, str]], tuple[Answer, str | None]]
    ) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            serving = self._serving
            arrived = monotonic()
            serving.arrive(name)
            query = request.rel_url.query
            return await serving.serve(
                request,
                lambda: process(query),
                fault=serving.take_global_fault(),
                arrived=arrived,
                app_id=query.get("authorized_app_id"),
                body=None,
                recording=serving.settings.record_requests,
            )

        return handle

    def _wrong_method(self, name: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            serving = self._serving
            serving.arrive(name)
            serving.settings.counters["http:405"] += 1
            if serving.settings.record_requests:
                serving.record(request, None, None, monotonic(), "http:405")
            body, _ = _error(CODE_BAD_REQUEST, "[405] METHOD NOT ALLOWED")
            return web.Response(status=405, body=body, content_type=JSON, headers={"Allow": "GET"})

        return handle

    def _check_client(self, query: Mapping[str, str], *, secret: bool) -> Answer | None:
        component = query.get("component_app_id")
        if not component:
            return _error(CODE_BAD_REQUEST, "missing parameter: component_app_id")
        if secret:
            given = query.get("component_app_secret")
            if not given:
                return _error(CODE_BAD_REQUEST, "missing parameter: component_app_secret")
            if not secrets.compare_digest(given, self.component_app_secret):
                return _error(CODE_BAD_CLIENT, "invalid client")
        if component != self._fake.component_app_id:
            return _error(CODE_BAD_CLIENT, "invalid client")
        return None

    def _check_component_token(self, query: Mapping[str, str]) -> Answer | None:
        refused = self._check_client(query, secret=False)
        if refused is not None:
            return refused
        token = query.get("component_access_token")
        if not token:
            return _error(CODE_BAD_REQUEST, "missing parameter: component_access_token")
        expires_at = self._component_tokens.get(token)
        if expires_at is None:
            return _error(CODE_REFUSED, "request refused, invalid component_access_token")
        if self.now() >= expires_at:
            return _error(CODE_EXPIRED, "component_access_token expired")
        return None

    def _start_push_ticket(self, query: Mapping[str, str]) -> tuple[Answer, str | None]:
        refused = self._check_client(query, secret=True)
        if refused is not None:
            return refused, None
        self.push_started = True
        self._fake.push.started(self.push_ticket())
        return _ok(), None

    def _component_access_token(self, query: Mapping[str, str]) -> tuple[Answer, str | None]:
        refused = self._check_client(query, secret=True)
        if refused is not None:
            return refused, None
        ticket = query.get("component_verify_ticket")
        if not ticket:
            return _error(CODE_BAD_REQUEST, "missing parameter: component_verify_ticket"), None
        if ticket not in self._tickets:
            return _error(CODE_REFUSED, "request refused, invalid component_verify_ticket"), None
        token = "ctok_" + secrets.token_hex(16)
        ttl = self.component_token_ttl
        self._component_tokens[token] = self.now() + ttl
        self.component_tokens_issued += 1
        return _ok(componentAccessToken=token, expiresIn=_wire_seconds(ttl)), None

    def _pre_auth_code(self, query: Mapping[str, str]) -> tuple[Answer, str | None]:
        refused = self._check_component_token(query)
        if refused is not None:
            return refused, None
        code = "pre_" + secrets.token_hex(16)
        ttl = self.pre_auth_code_ttl
        self._pre_auth_codes[code] = self.now() + ttl
        return _ok(preAuthCode=code, expiresIn=_wire_seconds(ttl)), None

    def _authorizer_access_token(self, query: Mapping[str, str]) -> tuple[Answer, str | None]:
        refused = self._check_component_token(query)
        if refused is not None:
            return refused, None
        code = query.get("authorization_code")
        if not code:
            return _error(CODE_BAD_REQUEST, "missing parameter: authorization_code"), None
        grant = self._codes.pop(code, None)
        if grant is None:
            return _error(CODE_BAD_REQUEST, "invalid authorization_code"), None
        app_id = grant.app_id
        if self.now() >= grant.expires_at:
            return _error(CODE_BAD_REQUEST, "authorization_code expired"), app_id
        access = self._issue_access_token(app_id)
        refresh = "rtok_" + secrets.token_hex(16)
        self._refresh_tokens[app_id] = refresh
        self._authorized_until[app_id] = self.now() + self.refresh_token_ttl
        self.exchanges[app_id] += 1
        permissions = self._permissions.get(app_id)
        if permissions is None:
            permissions = [dict(p) for p in DEFAULT_PERMISSIONS]
        answer = _ok(
            authorizerAccessToken=access,
            expiresIn=_wire_seconds(self.access_token_ttl),
            authorizerRefreshToken=refresh,
            refreshExpiresIn=_wire_seconds(self.refresh_token_ttl),
            authorizerAppId=app_id,
            authorizePermission=permissions,
        )
        return answer, app_id

    def _re_authorization_code(self, query: Mapping[str, str]) -> tuple[Answer, str | None]:
        refused = self._check_component_token(query)
        if refused is not None:
            return refused, None
        app_id = query.get("authorized_app_id")
        if not app_id:
            return _error(CODE_BAD_REQUEST, "missing parameter: authorized_app_id"), None
        if app_id not in self._fake.authorizers:
            return _error(CODE_BAD_REQUEST, "app not authorized"), None
        if self.now() >= self._authorized_until.get(app_id, math.inf):
            return _error(CODE_REFRESH_EXPIRED, "refresh_token expired"), app_id
        self.recoveries[app_id] += 1
        code = self._issue_code(app_id)
        return _ok(
            authorizationCode=code, expiresIn=_wire_seconds(self.authorization_code_ttl)
        ), app_id
