"""The stateful fake of the Kuaishou mini-program third-party platform."""

from __future__ import annotations

import collections
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from ._basic_info import CODE_RATE_LIMITED, BasicInfoEndpoints
from ._faults import Fault
from ._models import RecordedRequest
from ._oauth import FakeOAuth
from ._push import FakePush
from ._registry import FakeAuthorizer, Registry
from ._serving import ServingCore

__all__ = ["FakeKuaishou"]

CHAOS_KINDS: tuple[str, ...] = (
    "http_5xx",
    "drop",
    "hang",
    "rate_limited",
    "malformed_json",
    "invalid_token",
)


class FakeKuaishou:
    """A stateful, in-process stand-in for the Kuaishou mini-program platform.

    It serves the three "basic info" endpoints over real HTTP (``aiohttp``) with the
    platform's semantics, keeps per-app state, and can be told to misbehave: rate limits,
    expired and revoked tokens, and queued :class:`Fault` answers. Use it either with
    :meth:`start`/:meth:`stop` (or ``async with``), or mount :attr:`app` on aiohttp's
    ``TestServer``. The platform-authorization (OAuth) endpoints and their state live in
    :attr:`oauth` (:class:`~kuaishou_mp.testing.FakeOAuth`).

    Semantics of ``action`` on the domain endpoints, per app:

    * ``add`` appends the listed domains not already present (order kept, no duplicates,
      no error for domains already there);
    * ``delete`` removes the listed domains; if any of them is absent it answers
      ``403106`` and changes nothing;
    * ``set`` replaces each list present in the body and leaves the omitted lists
      unchanged (an assumption: the platform does not say), dropping duplicates;
    * ``get`` changes nothing.

    Every successful answer carries the configuration after the action. A missing or
    unknown ``action``, a list that is not a list of strings (``null`` included, for any
    action), or a body that is not a JSON object answers ``100200100``, as do missing query
    parameters. A ``component_app_id`` other than
    :attr:`component_app_id` answers ``100200101``, an unknown or revoked token
    ``100200102``, an expired or rotated-out token ``100200108``. Unknown paths answer HTTP
    404 with ``{"result": 1026, ...}``; a wrong method on a known path answers HTTP 405.
    Like the platform's own examples, successful domain answers spell ``error_msg``
    ``"sucess"`` and app-info answers ``"success"``.

    Checks run in this order: queued fault, query parameters, component id, token state,
    rate limit, body. :attr:`latency` and ``hang``/``delay`` faults hold a request before it
    is processed, so a request abandoned by its client never changes state.
    """

    def __init__(
        self,
        *,
        component_app_id: str = "ks_component_test",
        latency: float = 0.0,
        qps_limit: float | None = None,
        record_requests: bool = True,
        seed: int | None = None,
        qps_window: float = 1.0,
        component_qps: float | None = None,
    ) -> None:
        """Create a fake with no authorizers; see :meth:`add_authorizer`.

        Args:
            component_app_id: the third-party platform's app id requests must carry.
            latency: seconds added to every request before it is processed.
            qps_limit: per-app request limit in any :attr:`qps_window`; ``None`` = unlimited.
            record_requests: keep :attr:`requests` and :meth:`arrivals` (counters are
                always kept).
            seed: makes generated tokens and :meth:`chaos` draws reproducible.
            qps_window: the sliding window of ``qps_limit``, in seconds.
            component_qps: request limit for all apps together in any :attr:`qps_window`;
                ``None`` = unlimited.
        """
        self.component_app_id: str = component_app_id
        """The third-party platform app id every request must carry."""
        self.latency: float = latency
        """Seconds every request is held before it is processed; settable at any time."""
        self.qps_limit: float | None = qps_limit
        """Per-app limit: a request processed when its app already had at least this many
        admitted requests in the preceding :attr:`qps_window` seconds answers ``400002``
        (``api限速``). Rejected requests do not count against the window. Settable."""
        self.qps_window: float = qps_window
        """Length of the :attr:`qps_limit` sliding window in seconds (1.0 like the platform's
        QPS; shorten it to keep tests fast)."""
        self.component_qps: float | None = component_qps
        """Component-wide limit, unpublished like the platform's: a request processed when all
        apps together already had at least this many admitted requests in the preceding
        :attr:`qps_window` seconds answers ``400002``, whoever it is for. Settable."""
        self.outage: Fault | None = None
        """While set, every request is answered with this fault (``Fault.http(503)`` for a
        platform that is down), before queued faults; ``None`` ends the outage. Settable."""
        self.record_requests: bool = record_requests
        """Whether :attr:`requests` and :meth:`arrivals` are kept. Settable."""
        self.requests: list[RecordedRequest] = []
        """Every request received while :attr:`record_requests` is on, in the order their
        outcomes were settled (arrival order, except that a request held by :attr:`latency`
        or a ``delay`` fault is recorded when it is processed; ``at`` is always the arrival)."""
        self.counters: collections.Counter[str] = collections.Counter()
        """Always-on counters: ``"requests"``, ``"ok"``, ``"result:<code>"``,
        ``"http:<status>"``, ``"drop"``, ``"hang"``, ``"malformed"``, ``"raw"``,
        ``"huge"``, ``"endless"`` and per endpoint ``"endpoint:server_domain"``,
        ``"endpoint:webview_domain"``, ``"endpoint:app_info"``, ``"endpoint:not_found"``."""
        self._rng: random.Random | None = random.Random(seed) if seed is not None else None
        self._registry = Registry(self._rng)
        self._core = ServingCore(self)
        self._held = self._core.held
        self._basic = BasicInfoEndpoints(self, self._core, self._registry)
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.oauth: FakeOAuth = FakeOAuth(
            self, self._core, component_app_secret="ks_component_secret_test"
        )
        """The platform-authorization endpoints and their state (tickets, component tokens,
        codes, issued authorizer tokens); see :class:`~kuaishou_mp.testing.FakeOAuth`."""
        self.push: FakePush = FakePush(self)
        """The pushes to your receiver (set ``push.url``: signed, encrypted tickets and
        events, redelivered on a wrong answer); see :class:`~kuaishou_mp.testing.FakePush`."""

    # ------------------------------------------------------------------ authorizers

    @property
    def authorizers(self) -> Mapping[str, FakeAuthorizer]:
        """Read-only view of the registered authorizers by app id."""
        return self._registry.view

    def authorizer(self, app_id: str) -> FakeAuthorizer:
        """The authorizer registered as ``app_id``.

        Raises:
            KeyError: no such app.
        """
        return self._registry.authorizer(app_id)

    def add_authorizer(
        self,
        app_id: str | None = None,
        access_token: str | None = None,
        *,
        info: Mapping[str, Any] | None = None,
        server_domains: Mapping[str, Sequence[str]] | None = None,
        webview_domains: Sequence[str] | None = None,
    ) -> FakeAuthorizer:
        """Register one authorized mini-program.

        Args:
            app_id: its app id; the next free ``ks00000001``-style id when omitted.
            access_token: its token; a random unguessable one when omitted.
            info: the app-info document (without ``result``/``error_msg``); a realistic
                one generated from the app id when omitted.
            server_domains: the full server-domain configuration (lists not given start
                empty); two ``request`` and one ``download_file`` domain when omitted.
            webview_domains: the webview domains; two when omitted.

        Raises:
            ValueError: the app id or the token is already in use.
        """
        return self._registry.add(
            app_id,
            access_token,
            info=info,
            server_domains=server_domains,
            webview_domains=webview_domains,
        )

    def add_authorizers(self, n: int, *, prefix: str = "ks") -> list[FakeAuthorizer]:
        """Register ``n`` authorizers with ids ``f"{prefix}{i:08d}"`` and random tokens.

        Numbering continues where earlier calls with the same prefix stopped, skipping ids
        already taken. State documents are generated lazily, so 200,000 take well under a
        second.
        """
        return self._registry.add_many(n, prefix)

    def set_info(self, app_id: str, document: Mapping[str, Any]) -> None:
        """Replace the app-info document of ``app_id``; it is answered as-is.

        ``result`` and ``error_msg`` are added to the answer unless the document has its own.
        """
        self._registry.set_info(self.authorizer(app_id), document)

    def expire_token(self, app_id: str) -> None:
        """Make the current token of ``app_id`` answer ``100200108`` (expired)."""
        self._registry.expire(self.authorizer(app_id))

    def rotate_token(self, app_id: str, new_token: str | None = None) -> str:
        """Issue a new valid token for ``app_id`` and return it.

        The old token then answers ``100200108`` (expired), or keeps answering
        ``100200102`` if it had been revoked.

        Raises:
            ValueError: ``new_token`` is already in use.
        """
        return self._registry.rotate(self.authorizer(app_id), new_token)

    def revoke_token(self, app_id: str) -> None:
        """Make the current token of ``app_id`` answer ``100200102`` for good."""
        self._registry.revoke(self.authorizer(app_id))

    # ------------------------------------------------------------------ faults

    def inject(self, app_id: str | None, *faults: Fault) -> None:
        """Queue ``faults`` for the next requests of ``app_id``.

        With ``app_id=None`` they go to the global queue, which the next requests of any
        app (even ones with bad tokens) consume before their app's own queue. Each request
        consumes at most one fault. A per-app fault fires for requests carrying any token
        the app ever had.

        Raises:
            KeyError: unknown ``app_id``.
        """
        if app_id is None:
            self._core.global_faults.extend(faults)
            return
        self._registry.queue_faults(self.authorizer(app_id), faults)

    def fail_next(
        self, app_id: str | None, code: int, *, times: int = 1, error_msg: str = "injected"
    ) -> None:
        """Answer the next ``times`` requests (of ``app_id``, or of anyone for ``None``)
        with result ``code``."""
        fault = Fault.result(code, error_msg)
        self.inject(app_id, *([fault] * times))

    def clear_faults(self, app_id: str | None = None) -> None:
        """Drop the queued faults of ``app_id``, or of the global queue for ``None``."""
        if app_id is None:
            self._core.global_faults.clear()
        else:
            self._registry.clear_faults(self.authorizer(app_id))

    @property
    def pending_global_faults(self) -> tuple[Fault, ...]:
        """Faults in the global queue not consumed yet, next first."""
        return tuple(self._core.global_faults)

    def chaos(
        self,
        *,
        http_5xx: float = 0.0,
        drop: float = 0.0,
        hang: float = 0.0,
        rate_limited: float = 0.0,
        malformed_json: float = 0.0,
        invalid_token: float = 0.0,
        seed: int | None = None,
    ) -> dict[str, str]:
        """Give each registered authorizer at most one fault, drawn with these probabilities.

        The kinds are mutually exclusive. Transient kinds are queued once for the app, so
        its first request fails that way and the next one succeeds: ``http_5xx`` (HTTP 500,
        502, 503 or 504 HTML), ``drop``, ``hang`` (:meth:`Fault.hang` with its default),
        ``rate_limited`` (result ``400002``) and ``malformed_json``. ``invalid_token``
        revokes the app's token for good.

        Args:
            seed: seeds this draw; otherwise the fake's seed (if any) is used.

        Returns:
            ``{app_id: kind}`` for every app that got a fault.

        Raises:
            ValueError: a probability outside ``[0, 1]`` or a sum above 1.
        """
        probabilities = (http_5xx, drop, hang, rate_limited, malformed_json, invalid_token)
        for p in probabilities:
            if not (0.0 <= p <= 1.0):
                raise ValueError(f"probabilities must be within [0, 1], got {p!r}")
        if math.fsum(probabilities) > 1.0 + 1e-9:
            raise ValueError("probabilities must sum to at most 1")
        if seed is not None:
            rng = random.Random(seed)
        elif self._rng is not None:
            rng = self._rng
        else:
            rng = random.Random()
        bounds: list[tuple[float, str]] = []
        total = 0.0
        for p, kind in zip(probabilities, CHAOS_KINDS, strict=True):
            if p > 0.0:
                total += p
                bounds.append((total, kind))
        assigned: dict[str, str] = {}
        if not bounds:
            return assigned
        draw = rng.random
        drop_fault = Fault.drop()
        hang_fault = Fault.hang()
        limited_fault = Fault.result(CODE_RATE_LIMITED, "api限速")
        malformed_fault = Fault.malformed()
        gateway_faults = [Fault.http(status) for status in (500, 502, 503, 504)]
        registry = self._registry
        for auth in registry:
            r = draw()
            for bound, kind in bounds:  # noqa: B007 - `kind` is the one the loop stops at
                if r < bound:
                    break
            else:
                continue
            assigned[auth.app_id] = kind
            if kind == "invalid_token":
                registry.revoke(auth)
                continue
            if kind == "http_5xx":
                fault = gateway_faults[rng.randrange(len(gateway_faults))]
            elif kind == "drop":
                fault = drop_fault
            elif kind == "hang":
                fault = hang_fault
            elif kind == "rate_limited":
                fault = limited_fault
            else:
                fault = malformed_fault
            registry.queue_faults(auth, (fault,))
        return assigned

    # ------------------------------------------------------------------ records

    def arrivals(self, app_id: str) -> list[float]:
        """Monotonic arrival times of the requests for ``app_id`` on the three endpoints
        (kept while :attr:`record_requests` is on), oldest first.

        Raises:
            KeyError: unknown ``app_id``.
        """
        return self._registry.arrivals(self.authorizer(app_id))

    def max_in_window(self, app_id: str, window: float = 1.0) -> int:
        """The largest number of arrivals for ``app_id`` inside any half-open window
        ``[t, t + window)``."""
        times = sorted(self._registry.arrivals(self.authorizer(app_id)))
        best = 0
        lo = 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def reset_records(self) -> None:
        """Forget :attr:`requests`, :attr:`counters` and arrival times (state, faults and
        rate-limit windows are kept)."""
        self.requests.clear()
        self.counters.clear()
        self._registry.forget_arrivals()

    # ------------------------------------------------------------------ serving

    @property
    def app(self) -> web.Application:
        """The aiohttp application serving the fake (built once, on first access)."""
        if self._app is None:
            app = web.Application()
            router = app.router
            self._basic.add_routes(router)
            self.oauth.add_routes(router)
            router.add_route("*", "/{tail:.*}", self._basic.handle_not_found)
            app.on_startup.append(self._on_startup)
            app.on_shutdown.append(self._on_shutdown)
            self._app = app
        return self._app

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running fake.

        Raises:
            RuntimeError: not started with :meth:`start`.
        """
        if self._base_url is None:
            raise RuntimeError("FakeKuaishou is not running; call start() first")
        return self._base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (``port=0`` picks a free port) and return the base URL.

        Raises:
            RuntimeError: already started.
        """
        if self._runner is not None:
            raise RuntimeError("FakeKuaishou is already running")
        # access_log=None: a log line per request would dominate benchmark profiles.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        if ":" in bound_host:
            bound_host = f"[{bound_host}]"
        self._base_url = f"http://{bound_host}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        """Stop serving; hanging and streaming requests are cancelled. Idempotent."""
        runner = self._runner
        self._runner = None
        self._base_url = None
        self._cancel_held()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeKuaishou:
        """Start serving (see :meth:`start`)."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop serving (see :meth:`stop`)."""
        await self.stop()

    def _cancel_held(self) -> None:
        self.oauth.cancel_timers()
        self.push.cancel()
        self._core.cancel_held()

    async def _on_startup(self, app: web.Application) -> None:
        self._core.closing = False

    async def _on_shutdown(self, app: web.Application) -> None:
        # Also reached through aiohttp's TestServer, which never calls stop().
        self._cancel_held()
