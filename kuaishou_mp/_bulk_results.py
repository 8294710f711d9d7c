"""What a bulk run hands back: one :class:`BulkResult` per authorizer, live :class:`BulkProgress`
counters and the final :class:`BulkSummary` (the engine is :mod:`kuaishou_mp.bulk`)."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from time import monotonic
from typing import Generic, TypeAlias, TypeVar, cast

import attrs

from .errors import KuaishouError
from .models import Authorizer

__all__ = ["AuthorizerLike", "BulkProgress", "BulkResult", "BulkSummary"]

T = TypeVar("T")

AuthorizerLike: TypeAlias = Authorizer | str
"""An authorizer with its token, or a bare app id the client resolves through its token provider."""


@attrs.frozen(slots=True)
class BulkResult(Generic[T]):
    """The outcome of the call for one authorizer.

    Attributes:
        authorizer: The input item, exactly as the source gave it.
        value: The call's return value, or ``None`` when it failed.
        error: The :class:`~kuaishou_mp.errors.KuaishouError` the call raised, or ``None``.
        attempts: How many requests the call made (retries and token refreshes included).
        duration: Seconds the call took (monotonic clock).
    """

    authorizer: AuthorizerLike
    value: T | None
    error: KuaishouError | None
    attempts: int
    duration: float

    @property
    def ok(self) -> bool:
        """Whether the call succeeded (``error`` is ``None``)."""
        return self.error is None

    @property
    def app_id(self) -> str:
        """The app id of :attr:`authorizer`."""
        a = self.authorizer
        return a if isinstance(a, str) else a.app_id

    def unwrap(self) -> T:
        """Return :attr:`value`, or raise :attr:`error` when the call failed.

        Raises:
            KuaishouError: The error the call raised.
        """
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


class BulkProgress:
    """Live counters of a bulk run, safe to read at any time (a progress bar, a metrics exporter).

    Attributes:
        submitted: Items pulled from the source so far.
        done: Results handed to the consumer (``ok + failed``).
        ok: Results without an error.
        failed: Results with an error.
        in_flight: Calls currently running.
        errors_by_class: Failed results counted by exception class name.
        started_at: ``time.monotonic()`` when the run was created, reset when iteration starts.
        finished_at: ``time.monotonic()`` when the run ended or was closed, else ``None``.
    """

    __slots__ = (
        "done",
        "errors_by_class",
        "failed",
        "finished_at",
        "in_flight",
        "ok",
        "started_at",
        "submitted",
    )

    def __init__(self) -> None:
        self.submitted = 0
        self.done = 0
        self.ok = 0
        self.failed = 0
        self.in_flight = 0
        self.errors_by_class: collections.Counter[str] = collections.Counter()
        self.started_at = monotonic()
        self.finished_at: float | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the run started; frozen once it has finished."""
        end = monotonic() if self.finished_at is None else self.finished_at
        return end - self.started_at

    @property
    def rate(self) -> float:
        """Results per second so far (``done / elapsed``; 0.0 before any time has passed)."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    def __repr__(self) -> str:
        return (
            f"BulkProgress(submitted={self.submitted}, done={self.done}, ok={self.ok}, "
            f"failed={self.failed}, in_flight={self.in_flight})"
        )


@attrs.frozen
class BulkSummary:
    """A snapshot of a run's totals; final once the run is exhausted or closed.

    Attributes:
        total: Results handed to the consumer.
        ok: Results without an error.
        failed: Results with an error.
        errors_by_class: Failed results by exception class name, most common first.
        elapsed: Seconds the run took (so far).
        rate: Results per second.
    """

    total: int
    ok: int
    failed: int
    errors_by_class: Mapping[str, int]
    elapsed: float
    rate: float

    def __str__(self) -> str:
        text = f"{self.total} done: {self.ok} ok, {self.failed} failed"
        if self.errors_by_class:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in self.errors_by_class.items()) + ")"
        return f"{text} in {self.elapsed:.1f}s, {self.rate:.1f}/s"
