"""The client's calls over many mini-programs, and reconciliation: one mixin of :class:`Client`.

Every method here builds a call once (input validated and encoded once) and runs it for one
authorizer (reconciliation) or many (bulk runs) through the same pipeline as the single calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar, cast

from ._callstats import CallStats
from ._endpoints import (
    APP_INFO,
    SERVER_DOMAIN,
    WEBVIEW_DOMAIN,
    Endpoint,
    domain_body,
    validate_domain,
)
from ._json import dumps
from ._outage_wait import (
    DEFAULT_MAX_OUTAGE,
    OnOutage,
    check_outage_options,
    pulled_without_waiting,
    waiting_out_outages,
)
from ._pipeline import Pipeline, Request
from .bulk import AuthorizerLike, BulkResult, BulkRun, run_bulk
from .domains import DomainCaller, ReconcileMode, ReconcileResult, reconcile
from .errors import InvalidInputError
from .models import AppInfo, DomainAction, ServerDomains, WebviewDomains

__all__ = ["ManyCalls"]

T = TypeVar("T")
D = TypeVar("D", ServerDomains, WebviewDomains)
_Call = Callable[[AuthorizerLike, CallStats], Coroutine[Any, Any, T]]


class ManyCalls:
    """Reconciliation and bulk runs, for :class:`~kuaishou_mp.Client`."""

    _pipeline: Pipeline

    # -- reconciliation ------------------------------------------------------------------------

    async def reconcile_server_domains(
        self,
        authorizer: AuthorizerLike,
        desired: ServerDomains,
        mode: ReconcileMode | str = ReconcileMode.ENSURE,
        *,
        dry_run: bool = False,
    ) -> ReconcileResult[ServerDomains]:
        """Make the server domains match ``desired`` with the fewest calls.

        ``exact`` makes every list exactly the desired one, ``ensure`` adds what is missing,
        ``remove`` deletes what is present. A dry run only reads and returns the plan.

        Args:
            authorizer: An :class:`Authorizer`, or an app id when a token provider is set.
            desired: The goal; in ``exact`` mode every list of it, empty ones included.
            mode: A :class:`ReconcileMode` or its string.
            dry_run: Only read and plan; change nothing.

        Returns:
            The plan, the state before, and (unless a dry run) the state after.

        Raises:
            InvalidInputError: ``desired`` is not a :class:`ServerDomains`, holds a malformed
                domain, or ``mode`` is unknown; raised before anything is sent.
            KuaishouError: The read or the change failed (see :meth:`server_domain`).
        """
        self._check_desired(desired, ServerDomains)
        return await reconcile(self._caller(), authorizer, desired, mode, dry_run=dry_run)

    async def reconcile_webview_domains(
        self,
        authorizer: AuthorizerLike,
        desired: WebviewDomains,
        mode: ReconcileMode | str = ReconcileMode.ENSURE,
        *,
        dry_run: bool = False,
    ) -> ReconcileResult[WebviewDomains]:
        """Make the webview domains match ``desired``; see :meth:`reconcile_server_domains`.

        Args:
            authorizer: An :class:`Authorizer`, or an app id when a token provider is set.
            desired: The goal.
            mode: A :class:`ReconcileMode` or its string.
            dry_run: Only read and plan; change nothing.

        Raises:
            InvalidInputError: ``desired`` is not a :class:`WebviewDomains`, holds a malformed
                domain, or ``mode`` is unknown; raised before anything is sent.
            KuaishouError: The read or the change failed.
        """
        self._check_desired(desired, WebviewDomains)
        return await reconcile(self._caller(), authorizer, desired, mode, dry_run=dry_run)

    # -- bulk ----------------------------------------------------------------------------------

    def bulk_app_info(
        self,
        authorizers: Iterable[AuthorizerLike] | AsyncIterable[AuthorizerLike],
        *,
        concurrency: int = 100,
        on_result: Callable[[BulkResult[AppInfo]], None] | None = None,
        on_outage: OnOutage = "wait",
        max_outage: float = DEFAULT_MAX_OUTAGE,
    ) -> BulkRun[AppInfo]:
        """Read the basic info of many mini-programs; results stream as calls complete.

        ``authorizers`` is pulled lazily (a generator over a million rows is fine): memory and
        tasks are proportional to ``concurrency``. Every input yields exactly one
        :class:`BulkResult`; failures are results, not exceptions. Use as
        ``async with client.bulk_app_info(rows) as run: async for result in run: ...``.
        ``run.progress`` has live counts; ``on_result`` is called with every result (for
        metrics); ``run.summary()`` gives the totals and errors by class.

        Args:
            authorizers: Any iterable or async iterable of :class:`Authorizer` or app ids.
            concurrency: Calls in flight at most (per-authorizer limits apply as well).
            on_result: Called with each :class:`BulkResult` as it is handed out.
            on_outage: ``"wait"`` (default): while the platform is unavailable (the outage
                circuit is open), workers pause and in-flight items wait, and the run resumes
                when it is back; ``"fail"``: such items fail at once with
                :class:`PlatformUnavailableError`.
            max_outage: Seconds of outage a ``"wait"`` run sits out; after that, the rest
                of the run fails fast with :class:`PlatformUnavailableError`.

        Raises:
            InvalidInputError: ``concurrency`` is not a positive integer, or ``authorizers`` is
                a bare string.
        """
        call = self._sender(APP_INFO)
        return self._bulk(
            call, authorizers, concurrency, on_result, on_outage, max_outage, APP_INFO
        )

    def bulk_server_domain(
        self,
        authorizers: Iterable[AuthorizerLike] | AsyncIterable[AuthorizerLike],
        action: DomainAction | str,
        *,
        concurrency: int = 100,
        on_result: Callable[[BulkResult[ServerDomains]], None] | None = None,
        on_outage: OnOutage = "wait",
        max_outage: float = DEFAULT_MAX_OUTAGE,
        request: Iterable[str] | None = None,
        socket: Iterable[str] | None = None,
        upload_file: Iterable[str] | None = None,
        download_file: Iterable[str] | None = None,
        udp: Iterable[str] | None = None,
    ) -> BulkRun[ServerDomains]:
        """Run one server-domain action over many mini-programs; see :meth:`bulk_app_info`.

        The action and lists are validated once, before the run starts.

        Args:
            authorizers: Any iterable or async iterable of :class:`Authorizer` or app ids.
            action: A :class:`DomainAction` or its string.
            concurrency: Calls in flight at most.
            on_result: Called with each :class:`BulkResult` as it is handed out.
            on_outage: ``"wait"`` (default): while the platform is unavailable (the outage
                circuit is open), workers pause and in-flight items wait, and the run resumes
                when it is back; ``"fail"``: such items fail at once with
                :class:`PlatformUnavailableError`.
            max_outage: Seconds of outage a ``"wait"`` run sits out; after that, the rest
                of the run fails fast with :class:`PlatformUnavailableError`.
            request: See :meth:`server_domain`; so are ``socket``, ``upload_file``,
                ``download_file`` and ``udp``.
            socket: ``socket`` domains.
            upload_file: ``uploadFile`` domains.
            download_file: ``downloadFile`` domains.
            udp: ``udp`` domains.

        Raises:
            InvalidInputError: A bad action, domain or ``concurrency``; raised at once.
        """
        given = (request, socket, upload_file, download_file, udp)
        lists = dict(zip(ServerDomains.LISTS, given, strict=True))  # a test checks the order
        call = self._sender(SERVER_DOMAIN, action, lists)
        return self._bulk(
            call, authorizers, concurrency, on_result, on_outage, max_outage, SERVER_DOMAIN
        )

    def bulk_webview_domain(
        self,
        authorizers: Iterable[AuthorizerLike] | AsyncIterable[AuthorizerLike],
        action: DomainAction | str,
        *,
        concurrency: int = 100,
        on_result: Callable[[BulkResult[WebviewDomains]], None] | None = None,
        on_outage: OnOutage = "wait",
        max_outage: float = DEFAULT_MAX_OUTAGE,
        webview: Iterable[str] | None = None,
    ) -> BulkRun[WebviewDomains]:
        """Run one webview-domain action over many mini-programs; see :meth:`bulk_app_info`.

        Args:
            authorizers: Any iterable or async iterable of :class:`Authorizer` or app ids.
            action: A :class:`DomainAction` or its string.
            concurrency: Calls in flight at most.
            on_result: Called with each :class:`BulkResult` as it is handed out.
            on_outage: ``"wait"`` (default): while the platform is unavailable (the outage
                circuit is open), workers pause and in-flight items wait, and the run resumes
                when it is back; ``"fail"``: such items fail at once with
                :class:`PlatformUnavailableError`.
            max_outage: Seconds of outage a ``"wait"`` run sits out; after that, the rest
                of the run fails fast with :class:`PlatformUnavailableError`.
            webview: The webview domains.

        Raises:
            InvalidInputError: A bad action, domain or ``concurrency``; raised at once.
        """
        call = self._sender(WEBVIEW_DOMAIN, action, {"webview": webview})
        return self._bulk(
            call, authorizers, concurrency, on_result, on_outage, max_outage, WEBVIEW_DOMAIN
        )

    def bulk_reconcile_server_domains(
        self,
        authorizers: Iterable[AuthorizerLike] | AsyncIterable[AuthorizerLike],
        desired: ServerDomains,
        mode: ReconcileMode | str = ReconcileMode.ENSURE,
        *,
        dry_run: bool = False,
        concurrency: int = 100,
        on_result: Callable[[BulkResult[ReconcileResult[ServerDomains]]], None] | None = None,
        on_outage: OnOutage = "wait",
        max_outage: float = DEFAULT_MAX_OUTAGE,
    ) -> BulkRun[ReconcileResult[ServerDomains]]:
        """:meth:`reconcile_server_domains` over many mini-programs, as a bulk run.

        Args:
            authorizers: Any iterable or async iterable of :class:`Authorizer` or app ids.
            desired: The goal, as for :meth:`reconcile_server_domains`.
            mode: A :class:`ReconcileMode` or its string.
            dry_run: Only read and plan; change nothing.
            concurrency: Reconciliations in flight at most.
            on_result: Called with each :class:`BulkResult` as it is handed out.
            on_outage: ``"wait"`` (default): while the platform is unavailable (the outage
                circuit is open), workers pause and in-flight items wait, and the run resumes
                when it is back; ``"fail"``: such items fail at once with
                :class:`PlatformUnavailableError`.
            max_outage: Seconds of outage a ``"wait"`` run sits out; after that, the rest
                of the run fails fast with :class:`PlatformUnavailableError`.

        Raises:
            InvalidInputError: A bad goal, mode or ``concurrency``; raised at once.
        """
        call = self._reconciler(ServerDomains, desired, mode, dry_run)
        return self._bulk(
            call, authorizers, concurrency, on_result, on_outage, max_outage, SERVER_DOMAIN
        )

    def bulk_reconcile_webview_domains(
        self,
        authorizers: Iterable[AuthorizerLike] | AsyncIterable[AuthorizerLike],
        desired: WebviewDomains,
        mode: ReconcileMode | str = ReconcileMode.ENSURE,
        *,
        dry_run: bool = False,
        concurrency: int = 100,
        on_result: Callable[[BulkResult[ReconcileResult[WebviewDomains]]], None] | None = None,
        on_outage: OnOutage = "wait",
        max_outage: float = DEFAULT_MAX_OUTAGE,
    ) -> BulkRun[ReconcileResult[WebviewDomains]]:
        """:meth:`reconcile_webview_domains` over many mini-programs, as a bulk run.

        Args:
            authorizers: Any iterable or async iterable of :class:`Authorizer` or app ids.
            desired: The goal, as for :meth:`reconcile_webview_domains`.
            mode: A :class:`ReconcileMode` or its string.
            dry_run: Only read and plan; change nothing.
            concurrency: Reconciliations in flight at most.
            on_result: Called with each :class:`BulkResult` as it is handed out.
            on_outage: ``"wait"`` (default): while the platform is unavailable (the outage
                circuit is open), workers pause and in-flight items wait, and the run resumes
                when it is back; ``"fail"``: such items fail at once with
                :class:`PlatformUnavailableError`.
            max_outage: Seconds of outage a ``"wait"`` run sits out; after that, the rest
                of the run fails fast with :class:`PlatformUnavailableError`.

        Raises:
            InvalidInputError: A bad goal, mode or ``concurrency``; raised at once.
        """
        call = self._reconciler(WebviewDomains, desired, mode, dry_run)
        return self._bulk(
            call, authorizers, concurrency, on_result, on_outage, max_outage, WEBVIEW_DOMAIN
        )

    def _caller(self) -> DomainCaller:
        # Only ever mixed into Client, whose server_domain and webview_domain reconcile calls.
        return cast("DomainCaller", self)

    # -- building calls ------------------------------------------------------------------------

    def _sender(
        self,
        endpoint: Endpoint,
        action: DomainAction | str | None = None,
        lists: Mapping[str, Iterable[str] | None] | None = None,
    ) -> _Call[Any]:
        """One call of ``endpoint``, validated and encoded once, for any authorizer."""
        body = None if action is None else domain_body(endpoint, action, lists or {})
        payload = None if body is None else dumps(body)
        call = self._pipeline.call

        def send(authorizer: AuthorizerLike, stats: CallStats) -> Coroutine[Any, Any, Any]:
            return call(Request(endpoint, authorizer, body, payload, stats))

        return send

    def _reconciler(
        self, cls: type[D], desired: D, mode: ReconcileMode | str, dry_run: bool
    ) -> _Call[ReconcileResult[D]]:
        """One reconciliation to ``desired`` (checked here, once), for any authorizer."""
        self._check_desired(desired, cls)

        async def call(authorizer: AuthorizerLike, stats: CallStats) -> ReconcileResult[D]:
            # One reconciliation is a get plus at most one change; each is retried on its own.
            stats.attempts += 1
            return await reconcile(self._caller(), authorizer, desired, mode, dry_run=dry_run)

        return call

    def _bulk(
        self,
        call: _Call[T],
        authorizers: Iterable[AuthorizerLike] | AsyncIterable[AuthorizerLike],
        concurrency: int,
        on_result: Callable[[BulkResult[T]], None] | None,
        on_outage: OnOutage,
        max_outage: float,
        endpoint: Endpoint,
    ) -> BulkRun[T]:
        check_outage_options(on_outage, max_outage)
        call = waiting_out_outages(call, self._pipeline.capacity.circuit, on_outage, max_outage)
        observer = self._pipeline.observer
        return run_bulk(
            pulled_without_waiting(authorizers, on_outage),
            call,
            concurrency=concurrency,
            on_result=on_result,
            on_progress=None if observer is None else observer.bulk_progress(endpoint.name),
        )

    @staticmethod
    def _check_desired(desired: object, cls: type[Any]) -> None:
        if not isinstance(desired, cls):
            raise InvalidInputError(
                f"desired must be a {cls.__name__}, got {type(desired).__name__}"
            )
        for name in cls.LISTS:
            for i, domain in enumerate(getattr(desired, name)):
                validate_domain(domain, f"{name}[{i}]")
