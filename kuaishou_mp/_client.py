"""The client: lifecycle, options and the three endpoint calls, a facade over the pipeline.

Every call validates its input, builds one :class:`~kuaishou_mp._pipeline.Request` and hands it
to :meth:`Pipeline.call <kuaishou_mp._pipeline.Pipeline.call>` (token -> retries -> limiter ->
attempt; see :mod:`kuaishou_mp._pipeline._layers`).

Reconciliation and bulk runs come from a mixin (:mod:`kuaishou_mp._many_calls`). Copies made by
:meth:`Client.with_options` share the session, the limiter and the token
provider; only the per-call options differ.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Final
from urllib.parse import quote

import aiohttp

from ._callstats import CallStats
from ._default import DEFAULT, Default
from ._endpoints import (
    APP_INFO,
    SERVER_DOMAIN,
    WEBVIEW_DOMAIN,
    decode,
)
from ._many_calls import ManyCalls
from ._pipeline import Capacity, Observer, Pipeline, Request, TimerPool
from ._session import ConnectionLimits, SessionHolder, check_client_options
from ._transport import DEFAULT_MAX_RESPONSE_BYTES
from ._urls import BaseURL
from .bulk import AuthorizerLike
from .errors import APIError, InvalidInputError
from .hooks import Hooks
from .models import AppInfo, DomainAction, ServerDomains, WebviewDomains
from .ratelimit import Limiter, RateLimit
from .retry import RetryPolicy
from .timeout import Timeout
from .tokens import TokenProvider

__all__ = ["DEFAULT_BASE_URL", "Client"]

DEFAULT_BASE_URL: Final = "https://open.kuaishou.com"
_TOKEN_PARAM: Final = "&authorizer_access_token="


class _Shared(SessionHolder):
    """What every copy of a client shares and closes: the session, the limiter, the timers."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None,
        limiter: Limiter | None,
        limits: ConnectionLimits,
        verify_ssl: bool,
    ) -> None:
        super().__init__(session, limits=limits, verify_ssl=verify_ssl, owner="Client")
        self.limiter = limiter
        self.timers = TimerPool()

    async def close(self) -> None:
        if self.closed:
            return
        self.timers.close()
        await super().close()
        if self.limiter is not None:
            await self.limiter.aclose()


class Client(ManyCalls):
    """An asyncio client for the Kuaishou mini-program third-party platform.

    One client per process, shared by every task: it holds the connection pool, the
    per-authorizer rate limiters and the token provider. Use it as an async context manager, or
    call :meth:`aclose` when done::

        async with Client("ks_component_app_id") as client:
            info = await client.app_info(Authorizer("tt_app", token))

    Args:
        component_app_id: Your third-party application's app id.
        base_url: The platform's base URL (tests point it at the bundled fake): ``http://`` or
            ``https://``, a host, and optionally a port and a path prefix; no query or fragment.
        session: An ``aiohttp.ClientSession`` to use as is; it is never closed by the client.
            Without one the client creates its own on first use and closes it in :meth:`aclose`.
        timeout: Per-attempt timeout: seconds, or a :class:`Timeout`.
        rate_limit: A :class:`RateLimit` (an in-process limiter is built from it), any
            :class:`Limiter` (such as the Redis one), or ``None`` for no limiting. Default:
            ``RateLimit()``, 5 calls per second per authorizer, adaptive.
        retry: The :class:`RetryPolicy`; ``RetryPolicy.none()`` or ``None`` disables retries.
            Default: ``RetryPolicy()``, 4 attempts within 60 seconds.
        token_provider: A :class:`TokenProvider`. With one, calls accept a bare app id, and an
            expired token is refreshed once.
        error_codes: Extra or overriding entries for the result-code table
            (:data:`DEFAULT_ERROR_CODES`), e.g. ``{100200123: ServerError}``.
        connection_limits: Pool settings for a client-owned session.
        max_response_bytes: Larger bodies are not read; the call fails with a TransportError.
            An integer >= 1; the default is 1 MiB (1048576 bytes).
        verify_ssl: Keep TLS certificate verification (the default). ``False`` warns, and is
            refused with an injected session (whose connector decides).
        hooks: :class:`Hooks` called at every attempt, retry, throttled answer, call end and
            bulk run's progress (e.g. :class:`~kuaishou_mp.otel.OpenTelemetryHooks`), in
            order. None (the default) costs nothing. See the Observability page.

    Raises:
        InvalidInputError: An argument is malformed.
    """

    def __init__(
        self,
        component_app_id: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout | float | None = 10.0,
        rate_limit: RateLimit | Limiter | Default | None = DEFAULT,
        retry: RetryPolicy | Default | None = DEFAULT,
        token_provider: TokenProvider | None = None,
        error_codes: Mapping[int, type[APIError]] | None = None,
        connection_limits: ConnectionLimits | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        verify_ssl: bool = True,
        hooks: Iterable[Hooks] | None = None,
    ) -> None:
        error_table = check_client_options(
            component_app_id, base_url, error_codes, max_response_bytes
        )
        if not verify_ssl and session is not None:
            # An injected session's own connector decides; a warning here would be a lie.
            raise InvalidInputError(
                "verify_ssl applies to the client's own session; configure the injected "
                "session's connector instead"
            )
        if not verify_ssl:
            warnings.warn(
                "TLS certificate verification is off: tokens can be intercepted",
                stacklevel=2,
            )
        if isinstance(rate_limit, Default):
            rate_limit = RateLimit()
        limiter = rate_limit.build() if isinstance(rate_limit, RateLimit) else rate_limit
        # The hard global cap bounds the learned component-wide rate.
        capacity = Capacity(
            cap=rate_limit.global_qps if isinstance(rate_limit, RateLimit) else None,
            # A limiter shared by processes may share the learned rate too (RedisLimiter).
            shared=getattr(limiter, "shared_learned_rate", None),
        )
        observer = Observer.watching(hooks, capacity)
        self._component_app_id = component_app_id
        self._base_url = BaseURL(base_url)
        self._shared = _Shared(
            session=session,
            limiter=limiter,
            limits=connection_limits or ConnectionLimits(),
            verify_ssl=verify_ssl,
        )
        self._pipeline = Pipeline(
            component_app_id=component_app_id,
            holder=self._shared,
            decode=decode,
            error_codes=error_table,
            max_bytes=max_response_bytes,
            base_url=self._base_url,
            policy=RetryPolicy() if isinstance(retry, Default) else (retry or RetryPolicy.none()),
            timeout=Timeout.of(timeout),
            timer_pool=self._shared.timers,
            limiter=limiter,
            tokens=token_provider,
            token_query=f"component_app_id={quote(component_app_id, safe='')}{_TOKEN_PARAM}",
            observer=observer,
            capacity=capacity,
        )

    def __repr__(self) -> str:
        state = "closed" if self._shared.closed else "open"
        return (
            f"<Client component_app_id={self._component_app_id!r} {self._base_url.shown} {state}>"
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        self._shared.get()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's own session and connector (an injected session stays open).

        Idempotent. Calls made afterwards raise :class:`ClientClosedError`. Every
        :meth:`with_options` copy shares the session, so closing one closes them all.
        """
        if not self._shared.closed:
            # The learned rate shared by processes counts this one's last answers too.
            await self._pipeline.capacity.flush()
        await self._shared.close()

    async def close(self) -> None:
        """Alias of :meth:`aclose`, kept for compatibility (``aclose`` is the spelling every
        closable object of the SDK shares)."""
        await self.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._shared.closed

    @property
    def component_app_id(self) -> str:
        """The third-party application's app id this client calls for."""
        return self._component_app_id

    @property
    def session(self) -> aiohttp.ClientSession:
        """The ``aiohttp`` session (created on first access if the client owns it)."""
        return self._shared.get()

    def with_options(
        self,
        *,
        timeout: Timeout | float | Default | None = DEFAULT,
        retry: RetryPolicy | Default | None = DEFAULT,
        hooks: Iterable[Hooks] | Default | None = DEFAULT,
    ) -> Client:
        """A light copy with other per-call options, sharing session, limiter and tokens.

        Example: ``await client.with_options(retry=RetryPolicy.none(), timeout=2).app_info(a)``.
        Closing any copy closes them all.

        Args:
            timeout: Per-attempt timeout for the copy (seconds, a :class:`Timeout` or ``None``);
                left out, the copy keeps this client's.
            retry: Retry policy for the copy (``None`` for no retries); left out, kept.
            hooks: The copy's hooks, instead of this client's (``None`` or ``[]`` for none);
                left out, the copy shares this client's.

        Raises:
            InvalidInputError: A timeout is not a positive number, or ``hooks`` is not a list
                of :class:`Hooks`.
        """
        pipeline = self._pipeline
        copy = Client.__new__(Client)
        copy._component_app_id = self._component_app_id
        copy._base_url = self._base_url
        copy._shared = self._shared
        copy._pipeline = pipeline.with_options(
            timeout=pipeline.timeouts.timeout
            if isinstance(timeout, Default)
            else Timeout.of(timeout),
            policy=pipeline.policy if isinstance(retry, Default) else (retry or RetryPolicy.none()),
            observer=(
                pipeline.observer
                if isinstance(hooks, Default)
                else Observer.watching(hooks, pipeline.capacity)
            ),
        )
        return copy

    # -- the three endpoints -------------------------------------------------------------------

    async def app_info(self, authorizer: AuthorizerLike) -> AppInfo:
        """Read a mini-program's basic information.

        Args:
            authorizer: An :class:`Authorizer`, or an app id when a token provider is set.

        Raises:
            APIError: The platform refused (see the subclasses).
            TransportError: No JSON answer arrived after the retries.
            ResponseValidationError: The answer does not fit :class:`AppInfo`.
        """
        result: AppInfo = await self._pipeline.call(
            Request(APP_INFO, authorizer, None, None, CallStats())
        )
        return result

    async def server_domain(
        self,
        authorizer: AuthorizerLike,
        action: DomainAction | str,
        *,
        request: Iterable[str] | None = None,
        socket: Iterable[str] | None = None,
        upload_file: Iterable[str] | None = None,
        download_file: Iterable[str] | None = None,
        udp: Iterable[str] | None = None,
    ) -> ServerDomains:
        """Add, delete, overwrite (``set``) or read (``get``) the server domains.

        Lists left as ``None`` are not sent; ``get`` takes none. Returns the configuration after
        the action. A ``delete`` retried after a failure that may have reached the platform is
        confirmed with a ``get`` when it answers 403106 (see :mod:`kuaishou_mp.retry`).

        Args:
            authorizer: An :class:`Authorizer`, or an app id when a token provider is set.
            action: A :class:`DomainAction` or its string (``"add"``, ``"delete"``, ``"set"``,
                ``"get"``).
            request: ``request`` (HTTPS API) domains, bare host names.
            socket: ``socket`` (WebSocket) domains.
            upload_file: ``uploadFile`` domains.
            download_file: ``downloadFile`` domains.
            udp: ``udp`` domains.

        Raises:
            InvalidInputError: Unknown action, a malformed domain, or lists with ``get``;
                raised before anything is sent.
            DomainNotFoundError: ``delete`` of a domain that is not configured.
            APIError: Any other refusal; TransportError, ResponseValidationError as for
                :meth:`app_info`.
        """
        given = (request, socket, upload_file, download_file, udp)
        lists = dict(zip(ServerDomains.LISTS, given, strict=True))  # a test checks the order
        result: ServerDomains = await self._sender(SERVER_DOMAIN, action, lists)(
            authorizer, CallStats()
        )
        return result

    async def webview_domain(
        self,
        authorizer: AuthorizerLike,
        action: DomainAction | str,
        *,
        webview: Iterable[str] | None = None,
    ) -> WebviewDomains:
        """Add, delete, overwrite (``set``) or read (``get``) the webview (business) domains.

        Args:
            authorizer: An :class:`Authorizer`, or an app id when a token provider is set.
            action: A :class:`DomainAction` or its string.
            webview: The webview domains (bare host names); ``None`` for ``get``.

        Raises:
            InvalidInputError: Unknown action, a malformed domain, or a list with ``get``.
            DomainNotFoundError: ``delete`` of a domain that is not configured.
            APIError: Any other refusal; TransportError, ResponseValidationError as for
                :meth:`app_info`.
        """
        result: WebviewDomains = await self._sender(WEBVIEW_DOMAIN, action, {"webview": webview})(
            authorizer, CallStats()
        )
        return result
