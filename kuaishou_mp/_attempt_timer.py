"""One timer for the timeouts of many attempts, instead of one timer per request.

On the default asyncio loop a per-request timer is not cheap: ``call_at`` pushes a handle onto
a heap ordered by a Python ``__lt__``, and cancelling it leaves the handle there to be popped
later. aiohttp's ``ClientTimeout(total=...)`` (like ``asyncio.timeout()``) pays that on every
request: measured here, about 8% of a whole request's CPU time.

Every attempt made with one timeout value expires in the order it started, so a FIFO queue and
a single timer armed for its head are enough, and exact: the timer fires at the head's deadline,
drops the attempts that finished meanwhile, cancels the ones that are due and re-arms for the
next one still running. An attempt costs an append and a flag.

An expired attempt is interrupted the way ``asyncio.timeout()`` interrupts: its task is
cancelled, and :meth:`Watch.expired` then takes that cancellation back (``Task.uncancel``) so
the caller can raise a timeout instead. A cancellation from anyone else is never taken for a
timeout. ``Task.uncancel`` is Python 3.11+; on 3.10 :func:`attempt_timer` returns ``None`` and
the transport falls back to aiohttp's own per-request timeout.
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import current_task, get_running_loop
from collections import deque
from typing import Final

__all__ = ["AttemptTimer", "Watch", "attempt_timer"]

# Task.uncancel() and Task.cancelling() arrived in Python 3.11.
SUPPORTED: Final = sys.version_info >= (3, 11)


class Watch:
    """One attempt under an :class:`AttemptTimer`; call :meth:`finish` when it ends."""

    __slots__ = ("cancelling", "deadline", "done", "fired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float, cancelling: int) -> None:
        self.task: asyncio.Task[object] | None = task
        self.deadline = deadline
        self.cancelling = cancelling
        self.done = False
        self.fired = False

    def finish(self) -> None:
        """The attempt ended in time: the timer must not fire for it."""
        self.done = True
        self.task = None  # a finished watch may wait in the queue; it must not hold the task

    def expired(self) -> bool:
        """After a CancelledError: whether it was this timer's alone (then it is withdrawn).

        Mirrors ``asyncio.timeout()``: the cancellation is ours only if, once ours is taken
        back, the task is no more cancelled than when the attempt started.
        """
        task = self.task
        if not self.fired or task is None:
            return False
        if sys.version_info >= (3, 11):  # always, where timers are made (see attempt_timer)
            return task.uncancel() <= self.cancelling
        return False  # pragma: no cover


class AttemptTimer:
    """Enforces ``timeout`` seconds on every attempt watched, with one loop timer."""

    __slots__ = ("_handle", "_loop", "_queue", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._queue: deque[Watch] = deque()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self) -> Watch:
        """Start timing the current task's attempt."""
        loop = get_running_loop()
        task = current_task(loop)  # given the loop: before 3.12 it is a Python function
        if task is None:
            raise RuntimeError("an attempt must run inside an asyncio task")
        if loop is not self._loop:  # first use, or the client moved to another loop
            self.close()
            self._loop = loop
        queue = self._queue
        # Finished attempts leave from the front as they go, so the queue holds about as many
        # watches as there are attempts in flight (more only behind a slow one).
        while queue and queue[0].done:
            queue.popleft()
        cancelling = 0
        if sys.version_info >= (3, 11):
            cancelling = task.cancelling()
        watch = Watch(task, loop.time() + self.timeout, cancelling)
        queue.append(watch)
        if self._handle is None:
            self._handle = loop.call_at(watch.deadline, self._fire)
        return watch

    def _fire(self) -> None:
        self._handle = None
        assert self._loop is not None
        now = self._loop.time()
        queue = self._queue
        while queue:
            head = queue[0]
            if not head.done:
                if head.deadline > now:
                    self._handle = self._loop.call_at(head.deadline, self._fire)
                    return
                head.fired = True
                if head.task is not None and not head.task.done():
                    head.task.cancel()
            queue.popleft()

    def __len__(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Stop the timer and forget every watch (the client is closing)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._queue.clear()


def attempt_timer(timeout: float | None) -> AttemptTimer | None:
    """A timer for attempts of ``timeout`` seconds, or ``None`` where it cannot be used."""
    if timeout is None or not SUPPORTED:
        return None
    return AttemptTimer(timeout)
