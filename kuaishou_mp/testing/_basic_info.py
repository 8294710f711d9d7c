"""The fake's basic-info endpoint set: server domains, webview domains and app info."""

from __future__ import annotations

from collections.abc import Mapping
from time import monotonic
from typing import Any, Protocol

from aiohttp import web

from ._capacity import ComponentWindow
from ._faults import Fault
from ._json import dumps, loads
from ._models import SERVER_DOMAIN_KEYS
from ._registry import CODE_BAD_TOKEN, CODE_TOKEN_EXPIRED, FakeAuthorizer, Registry
from ._serving import JSON, ServingCore

__all__ = [
    "APP_INFO_PATH",
    "CODE_RATE_LIMITED",
    "SERVER_DOMAIN_PATH",
    "WEBVIEW_DOMAIN_PATH",
    "BasicInfoEndpoints",
]

SERVER_DOMAIN_PATH = "/openapi/mp/auth/app/server_domain"
WEBVIEW_DOMAIN_PATH = "/openapi/mp/auth/app/webview_domain"
APP_INFO_PATH = "/openapi/mp/auth/app/info"

_EP_SERVER = "endpoint:server_domain"
_EP_WEBVIEW = "endpoint:webview_domain"
_EP_INFO = "endpoint:app_info"
_EP_NOT_FOUND = "endpoint:not_found"

_WEBVIEW_KEYS: tuple[str, ...] = ("webview",)
_ACTIONS = frozenset(("add", "delete", "set", "get"))

CODE_BAD_REQUEST = 100200100
CODE_BAD_COMPONENT = 100200101
CODE_RATE_LIMITED = 400002
CODE_DOMAIN_NOT_EXIST = 403106
CODE_NOT_FOUND = 1026


def _error(code: int, error_msg: str) -> bytes:
    return dumps({"result": code, "error_msg": error_msg})


# Pre-serialized so the common error paths cost no encoding.
_MISSING_PARAMS = (
    _error(CODE_BAD_REQUEST, "missing parameter: component_app_id and authorizer_access_token"),
    f"result:{CODE_BAD_REQUEST}",
)
_BAD_COMPONENT = (_error(CODE_BAD_COMPONENT, "invalid client"), f"result:{CODE_BAD_COMPONENT}")
_BAD_TOKEN = (
    _error(CODE_BAD_TOKEN, "request refused, invalid access token"),
    f"result:{CODE_BAD_TOKEN}",
)
_EXPIRED = (_error(CODE_TOKEN_EXPIRED, "access_token expired"), f"result:{CODE_TOKEN_EXPIRED}")
_RATE_LIMITED = (_error(CODE_RATE_LIMITED, "api限速"), f"result:{CODE_RATE_LIMITED}")
_NOT_EXIST = (
    _error(CODE_DOMAIN_NOT_EXIST, "domain not exist"),
    f"result:{CODE_DOMAIN_NOT_EXIST}",
)
_NOT_FOUND_BODY = _error(CODE_NOT_FOUND, "[1026] 404 NOT FOUND")
_METHOD_NOT_ALLOWED_BODY = _error(CODE_BAD_REQUEST, "[405] METHOD NOT ALLOWED")


def _bad_request(error_msg: str) -> tuple[bytes, str]:
    return _error(CODE_BAD_REQUEST, error_msg), f"result:{CODE_BAD_REQUEST}"


class _Unparsable:
    """Marks a body that was sent but is not JSON (distinct from a JSON ``null``)."""


_UNPARSABLE = _Unparsable()


def _dedupe(domains: list[str]) -> list[str]:
    return list(dict.fromkeys(domains))


class _Platform(Protocol):
    """The fake's settings these endpoints read (live: tests change them at any time)."""

    component_app_id: str
    qps_limit: float | None
    qps_window: float
    component_qps: float | None
    outage: Fault | None
    record_requests: bool
    counters: Any


class BasicInfoEndpoints:
    """The three basic-info endpoints, with the semantics :class:`FakeKuaishou` documents."""

    def __init__(self, fake: _Platform, core: ServingCore, registry: Registry) -> None:
        self._fake = fake
        self._core = core
        self._registry = registry
        self._component_window = ComponentWindow()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Add the three routes (other methods answer HTTP 405) to ``router``."""
        for path, handler in (
            (SERVER_DOMAIN_PATH, self._server_domain),
            (WEBVIEW_DOMAIN_PATH, self._webview_domain),
        ):
            resource = router.add_resource(path)
            resource.add_route("POST", handler)
            resource.add_route("*", self._wrong_method)
        resource = router.add_resource(APP_INFO_PATH)
        resource.add_route("GET", self._app_info)
        resource.add_route("*", self._wrong_method)

    async def _server_domain(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, _EP_SERVER)

    async def _webview_domain(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, _EP_WEBVIEW)

    async def _app_info(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, _EP_INFO)

    async def _wrong_method(self, request: web.Request) -> web.StreamResponse:
        return await self._refuse(request, _EP_FOR_PATH.get(request.path, _EP_NOT_FOUND), 405)

    async def handle_not_found(self, request: web.Request) -> web.StreamResponse:
        """Answer HTTP 404 ``{"result": 1026, ...}`` (the catch-all route, added last)."""
        return await self._refuse(request, _EP_NOT_FOUND, 404)

    async def _refuse(self, request: web.Request, endpoint: str, status: int) -> web.Response:
        core = self._core
        core.arrive(endpoint)
        outcome = f"http:{status}"
        self._fake.counters[outcome] += 1
        raw = await request.read()
        if self._fake.record_requests:
            token = request.rel_url.query.get("authorizer_access_token")
            owner = self._registry.owner(token)
            core.record(request, _parse_for_record(raw), owner, monotonic(), outcome)
        if status == 404:
            return web.Response(status=404, body=_NOT_FOUND_BODY, content_type=JSON)
        allowed = "GET" if endpoint == _EP_INFO else "POST"
        return web.Response(
            status=405,
            body=_METHOD_NOT_ALLOWED_BODY,
            content_type=JSON,
            headers={"Allow": allowed},
        )

    async def _serve(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        arrived = monotonic()
        core = self._core
        core.arrive(endpoint)
        query = request.rel_url.query
        token = query.get("authorizer_access_token")
        registry = self._registry
        auth: FakeAuthorizer | None = None
        dead_code = 0
        if token is not None:
            auth, dead_code = registry.lookup(token)
        body: Any = None
        recorded_body: Any = None
        if endpoint is not _EP_INFO:
            raw = await request.read()
            if raw:
                try:
                    body = recorded_body = loads(raw)
                except (ValueError, RecursionError):
                    body = _UNPARSABLE
                    recorded_body = raw.decode("utf-8", "replace")
        recording = self._fake.record_requests
        if recording and auth is not None:
            registry.note_arrival(auth, arrived)
        fault = self._fake.outage
        if fault is None:
            fault = core.take_global_fault()
        if fault is None and auth is not None:
            fault = registry.next_fault(auth)
        app_id = auth.app_id if auth is not None else None

        def process() -> tuple[tuple[bytes, str], str | None]:
            return self._process(endpoint, query, token, auth, dead_code, body), app_id

        return await core.serve(
            request,
            process,
            fault=fault,
            arrived=arrived,
            app_id=app_id,
            body=recorded_body,
            recording=recording,
        )

    def _process(
        self,
        endpoint: str,
        query: Mapping[str, str],
        token: str | None,
        auth: FakeAuthorizer | None,
        dead_code: int,
        body: Any,
    ) -> tuple[bytes, str]:
        component = query.get("component_app_id")
        if not component or not token:
            return _MISSING_PARAMS
        if component != self._fake.component_app_id:
            return _BAD_COMPONENT
        if auth is None:
            return _BAD_TOKEN
        if dead_code:
            return _EXPIRED if dead_code == CODE_TOKEN_EXPIRED else _BAD_TOKEN
        if auth.token_revoked:
            return _BAD_TOKEN
        if auth.token_expired:
            return _EXPIRED
        component_qps = self._fake.component_qps
        now = monotonic()
        if component_qps is not None and self._component_window.full(
            component_qps, self._fake.qps_window, now
        ):
            return _RATE_LIMITED
        limit = self._fake.qps_limit
        if limit is not None and not self._registry.admit(auth, limit, self._fake.qps_window, now):
            return _RATE_LIMITED
        if component_qps is not None:
            self._component_window.admit(now)
        if endpoint is _EP_INFO:
            return dumps({"result": 1, "error_msg": "success", **auth.info}), "ok"
        if endpoint is _EP_SERVER:
            return _apply_action(body, auth.server_domains, SERVER_DOMAIN_KEYS)
        return _apply_action(body, {"webview": auth.webview_domains}, _WEBVIEW_KEYS)


_EP_FOR_PATH = {
    SERVER_DOMAIN_PATH: _EP_SERVER,
    WEBVIEW_DOMAIN_PATH: _EP_WEBVIEW,
    APP_INFO_PATH: _EP_INFO,
}


def _parse_for_record(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")


def _apply_action(
    body: Any, state: dict[str, list[str]], keys: tuple[str, ...]
) -> tuple[bytes, str]:
    if type(body) is not dict:
        return _bad_request("request body must be a JSON object")
    action = body.get("action")
    if type(action) is not str or action not in _ACTIONS:
        return _bad_request("action must be one of add, delete, set, get")
    given: list[tuple[list[str], list[str]]] = []
    for key in keys:
        if key in body:
            domains = body[key]
            if type(domains) is not list or not all(type(d) is str for d in domains):
                return _bad_request(f"{key} must be a list of strings")
            given.append((state[key], domains))
    if action == "add":
        for current, domains in given:
            present = set(current)
            for domain in domains:
                if domain not in present:
                    present.add(domain)
                    current.append(domain)
    elif action == "delete":
        for current, domains in given:
            present = set(current)
            if any(domain not in present for domain in domains):
                return _NOT_EXIST
        for current, domains in given:
            gone = set(domains)
            current[:] = [domain for domain in current if domain not in gone]
    elif action == "set":
        for current, domains in given:
            current[:] = _dedupe(domains)
    return dumps({"result": 1, "error_msg": "sucess", **state}), "ok"
