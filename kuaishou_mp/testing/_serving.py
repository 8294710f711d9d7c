"""The fake's serving core: records, counters, the global fault queue, holds, and the one
handler template every endpoint set answers through."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from aiohttp import web

from ._faults import HUGE_PREFIX, HUGE_SUFFIX, Fault
from ._models import RecordedRequest

__all__ = ["JSON", "Answer", "Process", "ServingCore", "Settings"]

JSON = "application/json"
Answer = tuple[bytes, str]
"""A serialized answer and its outcome (``"ok"``, ``"result:<code>"``)."""
Process = Callable[[], tuple[Answer, "str | None"]]
"""Runs a request against the fake's state: its answer and the app it was for."""

_ENDLESS_CHUNK = b"a" * 4096
_HUGE_CHUNK = b"a" * 65536


class Settings(Protocol):
    """The fake's settable knobs and its records, as the core reads them (live)."""

    latency: float
    outage: Fault | None
    record_requests: bool
    requests: list[RecordedRequest]
    counters: collections.Counter[str]


class ServingCore:
    """What every endpoint shares: counting, recording, faults, holding and answering."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.global_faults: collections.deque[Fault] = collections.deque()
        self.held: set[asyncio.Task[Any]] = set()
        self.closing = False

    def arrive(self, endpoint: str) -> None:
        """Count a request for ``endpoint``."""
        counters = self.settings.counters
        counters["requests"] += 1
        counters[endpoint] += 1

    def take_global_fault(self) -> Fault | None:
        """The next fault of the global queue, if any."""
        return self.global_faults.popleft() if self.global_faults else None

    def record(
        self, request: web.Request, body: Any, app_id: str | None, at: float, outcome: str
    ) -> None:
        """Append a :class:`RecordedRequest` (callers check ``record_requests``)."""
        self.settings.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                dict(request.rel_url.query),
                body,
                app_id,
                at,
                outcome,
                request.content_type if request.body_exists else None,
            )
        )

    async def serve(
        self,
        request: web.Request,
        process: Process,
        *,
        fault: Fault | None,
        arrived: float,
        app_id: str | None,
        body: Any,
        recording: bool,
    ) -> web.StreamResponse:
        """The handler template: answer ``fault`` if any, else hold and run ``process``.

        A ``drop_after`` fault runs ``process`` (the platform applies the call) and drops the
        answer; ``hang`` and ``delay`` hold the request before ``process`` runs (so a request
        abandoned by its client changes nothing); the other faults answer instead of it.
        ``app_id`` is what a fault's record names; ``body`` what every record holds.
        """
        settings = self.settings
        counters = settings.counters
        if fault is not None and fault.kind == "drop_after":
            (_, outcome), done_for = process()
            counters["drop_after"] += 1
            if recording:
                self.record(request, body, done_for, arrived, f"drop_after:{outcome}")
            return await self.answer_fault(request, Fault.drop())
        if fault is not None:
            kind = fault.kind
            if kind != "delay":
                counters[fault.outcome] += 1
                if recording:
                    self.record(request, body, app_id, arrived, fault.outcome)
            if kind == "hang" or kind == "delay":
                await self.hold(settings.latency + fault.seconds)
            else:
                if settings.latency > 0:
                    await self.hold(settings.latency)
                return await self.answer_fault(request, fault)
        elif settings.latency > 0:
            await self.hold(settings.latency)
        (payload, outcome), done_for = process()
        if fault is None or fault.kind == "delay":
            counters[outcome] += 1
            if recording:
                self.record(request, body, done_for, arrived, outcome)
        return web.Response(body=payload, content_type=JSON)

    # ------------------------------------------------------------------ holds

    def cancel_held(self) -> None:
        """Cancel every held or streaming request; holds from now on return at once."""
        self.closing = True
        for task in list(self.held):
            task.cancel()

    async def hold(self, seconds: float) -> None:
        """Sleep ``seconds`` in a way :meth:`cancel_held` ends."""
        if self.closing:
            return
        with self._holding():
            await asyncio.sleep(seconds)

    @contextlib.contextmanager
    def _holding(self) -> Iterator[None]:
        """The current task is held (so :meth:`cancel_held` cancels it) within the block."""
        task = asyncio.current_task()
        assert task is not None
        self.held.add(task)
        try:
            yield
        finally:
            self.held.discard(task)

    # ------------------------------------------------------------------ fault answers

    async def answer_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        """Answer as ``fault`` says (a body, a status, a dropped connection, a stream)."""
        kind = fault.kind
        if kind == "result" or kind == "malformed":
            return web.Response(body=fault.body, content_type=JSON)
        if kind == "http" or kind == "raw":
            return web.Response(
                status=fault.status, body=fault.body, headers={"Content-Type": fault.content_type}
            )
        if kind == "drop":
            transport = request.transport
            if transport is not None:
                transport.close()
            # Writing this to the closed transport fails with ConnectionResetError, which
            # aiohttp treats as a premature client disconnect: nothing is sent or logged.
            return web.Response()
        if kind == "huge":
            return await self._stream_huge(request, fault.size)
        if kind == "endless":
            return await self._stream_endless(request)
        raise AssertionError(f"unhandled fault kind {kind!r}")  # pragma: no cover

    async def _stream_huge(self, request: web.Request, size: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": JSON})
        response.content_length = size
        with self._holding(), contextlib.suppress(ConnectionError):
            await response.prepare(request)
            await response.write(HUGE_PREFIX)
            remaining = size - len(HUGE_PREFIX) - len(HUGE_SUFFIX)
            chunk_size = len(_HUGE_CHUNK)
            while remaining > 0:
                await response.write(
                    _HUGE_CHUNK if remaining >= chunk_size else _HUGE_CHUNK[:remaining]
                )
                remaining -= chunk_size
            await response.write(HUGE_SUFFIX)
        return response

    async def _stream_endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": JSON})
        with self._holding(), contextlib.suppress(ConnectionError):
            await response.prepare(request)
            await response.write(HUGE_PREFIX)
            while not self.closing:
                await response.write(_ENDLESS_CHUNK)
                # Yield long enough that an endless answer cannot starve the event loop.
                await asyncio.sleep(0.005)
        return response
