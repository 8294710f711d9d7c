"""What the layers tell a client's hooks and its log: attempts, retries, throttling, call ends.

A client with hooks holds one :class:`Observer`; with none, the layers hold ``None`` and build
no event at all (the hot path only checks for ``None``). The events themselves are the public
ones of :mod:`kuaishou_mp.hooks`, built and dispatched by :class:`~kuaishou_mp._hookset.HookSet`;
an observer adds only what the pipeline alone knows: the request's URL with its secrets
``REDACTED``, the attempt number, the timing, and the learned rate if the client learns one.

The per-attempt log line lives here too: it carries the same fields (``extra=``, see
:func:`~kuaishou_mp._logging.log_fields`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from .._hookset import HookSet
from .._logging import log_fields
from .._scrub import redact_url
from ..bulk import BulkProgress
from ..errors import RateLimitedError
from ..hooks import AttemptStart, BulkProgressEvent, CircuitState, Hooks
from ._capacity import Capacity
from ._request import Request

__all__ = ["Observer", "log_attempt"]

logger = logging.getLogger("kuaishou_mp")

T = TypeVar("T")
LearnedRate = Callable[[], "float | None"]


class Observer:
    """A client's hooks, fed from the layers. Shared by ``with_options`` copies that keep them.

    ``learned_rate``, when set, gives the component-wide rate the client has learned (calls
    per second); it is read for every :class:`~kuaishou_mp.AttemptStart` and
    :class:`~kuaishou_mp.ThrottleEvent`.
    """

    __slots__ = ("__weakref__", "_urls", "hooks", "learned_rate")

    def __init__(self, hooks: HookSet, learned_rate: LearnedRate | None = None) -> None:
        self.hooks = hooks
        self.learned_rate = learned_rate
        self._urls: dict[str, str] = {}  # endpoint name -> redacted URL of token-bearing calls

    @classmethod
    def of(
        cls, hooks: Iterable[Hooks] | None, learned_rate: LearnedRate | None = None
    ) -> Observer | None:
        """The observer of a client given ``hooks`` (validated), ``None`` for none.

        Raises:
            InvalidInputError: ``hooks`` is not an iterable of :class:`~kuaishou_mp.Hooks`.
        """
        if hooks is None:
            return None
        hookset = HookSet(hooks)
        return cls(hookset, learned_rate) if hookset.enabled else None

    @classmethod
    def watching(cls, hooks: Iterable[Hooks] | None, capacity: Capacity) -> Observer | None:
        """:meth:`of`, reading the learned rate of ``capacity`` and hearing its circuit."""
        observer = cls.of(hooks, capacity.learned_rate)
        if observer is not None:
            capacity.watch(observer)
        return observer

    def _rate(self) -> float | None:
        rate = self.learned_rate
        return None if rate is None else rate()

    def url(self, req: Request) -> str:
        """``req``'s full URL with every secret replaced by ``REDACTED``."""
        if req.token is None:  # the component's own calls: the query holds varying secrets
            return redact_url(req.url)
        # An authorizer's calls differ only by the token: redacted, one URL per endpoint.
        name = req.endpoint.name
        url = self._urls.get(name)
        if url is None:
            url = self._urls[name] = redact_url(req.url)
        return url

    # -- the layers' events ----------------------------------------------------------------------

    async def call(self, run: Callable[[Request], Awaitable[T]], req: Request) -> T:
        """``await run(req)``, then tell the hooks how the logical call ended."""
        began = time.monotonic()
        try:
            result = await run(req)
        except BaseException as exc:
            self._call_ended(req, began, exc)
            raise
        self._call_ended(req, began, None)
        return result

    def _call_ended(self, req: Request, began: float, error: BaseException | None) -> None:
        endpoint = req.endpoint
        self.hooks.call_end(
            endpoint=endpoint.name,
            method=endpoint.method,
            app_id=req.app_id,
            attempts=req.stats.attempts,
            duration=time.monotonic() - began,
            error=error,
        )

    def attempt_started(self, req: Request, limiter_wait: float) -> AttemptStart | None:
        """Tell the hooks an attempt goes now; pass the result to :meth:`attempt_ended`."""
        hooks = self.hooks
        if not hooks.wants_attempts:
            return None
        endpoint = req.endpoint
        return hooks.attempt_start(
            endpoint=endpoint.name,
            method=endpoint.method,
            url=self.url(req),
            app_id=req.app_id,
            attempt=req.stats.attempts,
            limiter_wait=limiter_wait,
            learned_rate=self._rate(),
        )

    def attempt_ended(
        self,
        start: AttemptStart | None,
        began: float,
        status: int | None,
        code: int | None,
        error: BaseException | None,
    ) -> None:
        """Tell the hooks the attempt begun at monotonic ``began`` ended."""
        if start is not None:
            self.hooks.attempt_end(
                start,
                duration=time.monotonic() - began,
                error=error,
                status=status,
                result_code=code,
            )

    def retried(self, req: Request, error: BaseException, delay: float) -> None:
        """The attempt just made failed with ``error`` and is retried after ``delay`` s."""
        self.hooks.retry(
            endpoint=req.endpoint.name,
            app_id=req.app_id,
            attempt=req.stats.attempts,
            delay=delay,
            error=error,
        )

    def throttled(self, req: Request, error: RateLimitedError) -> None:
        """The attempt just made was throttled (after the throttle feedback has heard of it)."""
        self.hooks.throttle(
            endpoint=req.endpoint.name,
            app_id=req.app_id,
            attempt=req.stats.attempts,
            result_code=error.code,
            learned_rate=self._rate(),
        )

    def circuit_changed(self, old: CircuitState, new: CircuitState) -> None:
        """The client's outage circuit moved from ``old`` to ``new``."""
        self.hooks.circuit_change(new, old)

    def bulk_progress(self, endpoint: str) -> Callable[[BulkProgress], None] | None:
        """A bulk run's ``on_progress`` for a run calling ``endpoint``; ``None`` if unheard."""
        hooks = self.hooks
        if not hooks.wants_bulk_progress:
            return None

        def progress(p: BulkProgress) -> None:
            # id(p): unique among the runs alive, whichever client (or copy) runs them.
            hooks.bulk_progress(
                BulkProgressEvent(
                    id(p), endpoint, p.in_flight, p.done, p.ok, p.failed, p.finished_at is not None
                )
            )

        return progress


def log_attempt(req: Request, status: int, code: int, began: float) -> None:
    """The DEBUG line of one attempt that got an answer (callers check the level first)."""
    app_id = req.app_id
    attempt = req.stats.attempts
    endpoint = req.endpoint.name
    logger.debug(
        "%s app_id=%s attempt=%d status=%d result=%d duration=%.3fs",
        endpoint,
        app_id or "-",
        attempt,
        status,
        code,
        time.monotonic() - began,
        extra=log_fields(endpoint, app_id, attempt, code),
    )
