"""Run one call over many authorizers with bounded concurrency, streaming results as they finish.

:func:`run_bulk` is the engine behind the client's ``bulk_*`` methods. It pulls authorizers lazily
from any iterable or async iterable, keeps at most ``concurrency`` calls in flight and hands back
a :class:`BulkRun`: an async iterator of :class:`BulkResult` in completion order, with live
:class:`BulkProgress` counters and a :class:`BulkSummary` at the end.

Memory and task count grow with ``concurrency``, never with the number of authorizers: a fixed
pool of worker tasks pulls from the source only as fast as results are consumed.
"""

from __future__ import annotations

import asyncio
import collections
import enum
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sized,
)
from time import monotonic
from types import AsyncGeneratorType, TracebackType
from typing import Final, Generic, TypeVar, cast

from kuaishou_mp._bulk_results import AuthorizerLike, BulkProgress, BulkResult, BulkSummary
from kuaishou_mp._callstats import CallStats
from kuaishou_mp._validate import integer
from kuaishou_mp.errors import InvalidInputError, KuaishouError

__all__ = [
    "AuthorizerLike",
    "BulkProgress",
    "BulkResult",
    "BulkRun",
    "BulkSummary",
    "run_bulk",
]

T = TypeVar("T")


class _Sentinel(enum.Enum):
    EXHAUSTED = enum.auto()


_EXHAUSTED: Final = _Sentinel.EXHAUSTED


def _attempts_of(err: KuaishouError) -> int:
    attempts = getattr(err, "attempts", 0)
    return attempts if isinstance(attempts, int) else 0


class _Engine(Generic[T]):
    """The state shared by the workers and the result generator.

    Results travel through a deque rather than an ``asyncio.Queue``: one consumer, wake-ups only
    when someone actually waits, and blocked workers released in a batch once the backlog halves
    (so a slow consumer does not cost a task switch per result).

    Deliberately holds no reference to the :class:`BulkRun` or its generator: dropping the run
    must drop the generator's last reference so the loop's asyncgen finalizer closes it.
    """

    __slots__ = (
        "asource",
        "blocked",
        "call",
        "closing",
        "error",
        "finished",
        "getter",
        "halted",
        "live",
        "lock",
        "maxsize",
        "on_progress",
        "on_result",
        "progress",
        "pulling",
        "ready",
        "size",
        "source",
    )

    def __init__(
        self,
        source: Iterator[AuthorizerLike] | None,
        asource: AsyncIterator[AuthorizerLike] | None,
        call: Callable[[AuthorizerLike, CallStats], Awaitable[T]],
        concurrency: int,
        size: int,
        on_result: Callable[[BulkResult[T]], None] | None,
        on_progress: Callable[[BulkProgress], None] | None = None,
    ) -> None:
        self.source = source
        self.asource = asource
        # Async generators cannot be re-entered, so async sources are advanced under a lock;
        # a sync next() never yields to the loop and needs none.
        self.lock = asyncio.Lock() if asource is not None else None
        self.call = call
        self.maxsize = concurrency
        self.size = size  # number of workers
        self.live = 0
        self.on_result = on_result
        self.on_progress = on_progress
        self.progress = BulkProgress()
        self.pulling = True
        self.closing = False
        self.halted = False
        self.finished = asyncio.Event()
        self.error: BaseException | None = None
        self.ready: collections.deque[BulkResult[T]] = collections.deque()
        self.getter: asyncio.Future[None] | None = None
        self.blocked: list[asyncio.Future[None]] = []

    def wake_consumer(self) -> None:
        getter = self.getter
        if getter is not None:
            self.getter = None
            if not getter.done():  # done when the consumer was cancelled while waiting
                getter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.pulling = False
        self.wake_consumer()

    def halt(self) -> None:
        self.halted = True
        self.pulling = False
        self.wake_consumer()

    async def pull_async(self) -> AuthorizerLike | _Sentinel:
        assert self.lock is not None
        assert self.asource is not None
        async with self.lock:
            if not self.pulling:
                return _EXHAUSTED
            try:
                return await anext(self.asource)
            except StopAsyncIteration:
                return _EXHAUSTED

    async def work(self) -> None:
        loop = asyncio.get_running_loop()
        source = self.source
        call = self.call
        ready = self.ready
        blocked = self.blocked
        maxsize = self.maxsize
        progress = self.progress
        try:
            while self.pulling:
                item = next(source, _EXHAUSTED) if source is not None else await self.pull_async()
                if item is _EXHAUSTED:
                    self.pulling = False
                    break
                progress.submitted += 1
                progress.in_flight += 1
                stats = CallStats()
                start = monotonic()
                try:
                    value = await call(item, stats)
                except KuaishouError as err:
                    result: BulkResult[T] = BulkResult(
                        item, None, err, stats.attempts or _attempts_of(err), monotonic() - start
                    )
                else:
                    result = BulkResult(item, value, None, stats.attempts, monotonic() - start)
                progress.in_flight -= 1
                ready.append(result)
                if self.getter is not None:
                    self.wake_consumer()
                if len(ready) >= maxsize:
                    # Backpressure: hold this worker (and so the source) until the consumer
                    # catches up.
                    waiter = loop.create_future()
                    blocked.append(waiter)
                    await waiter
        except asyncio.CancelledError:
            if not self.closing:
                # Someone else cancelled a worker (or the call leaked a CancelledError): the
                # consumer must not wait forever for this worker to finish.
                self.fail(RuntimeError("a bulk worker was cancelled from outside the run"))
            raise
        except Exception as exc:  # a bug in the call or the source ends the run
            self.fail(exc)
            return
        self.live -= 1
        if self.live == 0:
            self.wake_consumer()

    async def results(self) -> AsyncGenerator[BulkResult[T], None]:
        loop = asyncio.get_running_loop()
        progress = self.progress
        ready = self.ready
        blocked = self.blocked
        low = self.maxsize // 2
        on_result = self.on_result
        on_progress = self.on_progress
        progress.started_at = monotonic()
        workers = [loop.create_task(self.work()) for _ in range(self.size)]
        self.live = len(workers)
        try:
            if on_progress is not None:
                on_progress(progress)
            while True:
                if self.error is not None:
                    raise self.error
                if self.halted:
                    return
                if not ready:
                    if self.live == 0:
                        return
                    getter = self.getter = loop.create_future()
                    await getter
                    continue
                got = ready.popleft()
                if blocked and len(ready) <= low:
                    for waiter in blocked:
                        if not waiter.done():
                            waiter.set_result(None)
                    blocked.clear()
                if got.error is None:
                    progress.ok += 1
                else:
                    progress.failed += 1
                    progress.errors_by_class[type(got.error).__name__] += 1
                progress.done += 1
                if on_result is not None:
                    on_result(got)
                if on_progress is not None:
                    on_progress(progress)
                yield got
        finally:
            self.closing = True
            self.pulling = False
            for task in workers:
                task.cancel()
            try:
                if workers:
                    await asyncio.wait(workers)
            finally:
                progress.in_flight = 0
                progress.finished_at = monotonic()
                self.finished.set()
                if on_progress is not None:
                    on_progress(progress)


class BulkRun(Generic[T]):
    """A running bulk operation: an async iterator of :class:`BulkResult` in completion order.

    Created by :func:`run_bulk` (and the client's ``bulk_*`` methods). Nothing runs until
    iteration starts. Leave early with ``async with``, :meth:`aclose`, or by cancelling the
    consuming task: in-flight calls are cancelled and awaited. A run dropped after ``break``
    without closing is closed by the event loop's async-generator finalizer.

    Iterating raises whatever non-:class:`~kuaishou_mp.errors.KuaishouError` exception escaped a
    call or the source (a bug), after cancelling the other calls.

    Attributes:
        progress: Live counters, updated as results are handed out.
    """

    __slots__ = ("_engine", "_results", "progress")

    def __init__(self, engine: _Engine[T]) -> None:
        self.progress = engine.progress
        self._engine = engine
        # The concrete type, for ``ag_running`` (the ABC does not declare it).
        self._results = cast("AsyncGeneratorType[BulkResult[T], None]", engine.results())

    def __aiter__(self) -> AsyncIterator[BulkResult[T]]:
        # The results generator itself: ``async for`` then skips :meth:`__anext__`, a Python
        # call per result.
        return self._results

    def __anext__(self) -> Awaitable[BulkResult[T]]:
        """Wait for the next finished call and return its result.

        Raises:
            StopAsyncIteration: Every item was processed, or the run was closed.
            Exception: A non-``KuaishouError`` exception from a call or from the source.
        """
        return self._results.__anext__()

    async def aclose(self) -> None:
        """Stop the run: cancel the calls in flight and wait for them. Safe to call twice.

        May be called from another task while the consumer waits for a result; the consumer's
        iteration then simply ends.
        """
        if self._results.ag_running:
            # An async generator cannot be closed while another task is inside it: ask it to
            # end on its own and wait until its cleanup has run.
            self._engine.halt()
            await self._engine.finished.wait()
        else:
            await self._results.aclose()

    async def __aenter__(self) -> BulkRun[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def summary(self) -> BulkSummary:
        """Return the totals so far; final once the run is exhausted or closed."""
        p = self.progress
        elapsed = p.elapsed
        return BulkSummary(
            total=p.done,
            ok=p.ok,
            failed=p.failed,
            errors_by_class=dict(p.errors_by_class.most_common()),
            elapsed=elapsed,
            rate=p.done / elapsed if elapsed > 0 else 0.0,
        )

    def __repr__(self) -> str:
        return f"BulkRun({self.progress!r})"


def run_bulk(
    items: Iterable[AuthorizerLike] | AsyncIterable[AuthorizerLike],
    call: Callable[[AuthorizerLike, CallStats], Awaitable[T]],
    *,
    concurrency: int = 100,
    on_result: Callable[[BulkResult[T]], None] | None = None,
    on_progress: Callable[[BulkProgress], None] | None = None,
) -> BulkRun[T]:
    """Run ``call`` for every item of ``items``, at most ``concurrency`` at a time.

    Items are pulled lazily, so a generator of millions of app ids is fine: a consumer that
    stops early has made the source yield only about ``2 * concurrency`` items beyond what it
    read. The source is not closed by the run; it belongs to the caller.

    Args:
        items: Authorizers or app ids: any iterable or async iterable (not a single string).
        call: Makes the call for one item, filling ``stats.attempts``. A
            :class:`~kuaishou_mp.errors.KuaishouError` it raises becomes a failed result;
            any other exception ends the run and is raised to the consumer.
        concurrency: How many calls may run at once (and how many results may wait unread).
        on_result: Called with every result as it is handed out, e.g. for metrics. An
            exception it raises ends the run like a bug in ``call``.
        on_progress: Called with the run's :class:`BulkProgress` when iteration starts,
            after each result is handed out (after ``on_result``), and once when the run
            has finished or was closed (``finished_at`` is then set). The client's hooks get
            their ``on_bulk_progress`` events this way. An exception it raises ends the run
            like a bug in ``call``.

    Returns:
        A :class:`BulkRun` to iterate (or use with ``async with``).

    Raises:
        InvalidInputError: ``concurrency`` is not an int >= 1, or ``items`` is a ``str`` /
            ``bytes`` or not iterable.
    """
    integer("concurrency", concurrency)
    if isinstance(items, (str, bytes, bytearray)):
        raise InvalidInputError(
            "items must be an iterable of authorizers or app ids, not a single "
            f"{type(items).__name__} (wrap one app id in a list)"
        )
    source: Iterator[AuthorizerLike] | None = None
    asource: AsyncIterator[AuthorizerLike] | None = None
    if isinstance(items, AsyncIterable):
        asource = aiter(items)
    elif isinstance(items, Iterable):
        source = iter(items)
    else:
        raise InvalidInputError(
            f"items must be an iterable or async iterable, not {type(items).__name__}"
        )
    size = concurrency
    if isinstance(items, Sized):
        # Small fixed batches need no more workers than items.
        size = min(concurrency, len(items))
    return BulkRun(_Engine(source, asource, call, concurrency, size, on_result, on_progress))
