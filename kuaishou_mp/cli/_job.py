"""Running one bulk call over an authorizers file: input, output, progress, summary, exit code."""

from __future__ import annotations

import asyncio
import collections
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import attrs
import click
from rich.console import Console

from .._client import Client
from ..bulk import BulkRun
from ..domains import ReconcileResult
from ..errors import InvalidInputError
from ..models import Authorizer
from ..ratelimit import RateLimit
from ._io import (
    InputFileError,
    JsonLinesSink,
    PreviousRun,
    parse_app_ids,
    parse_authorizers,
    read_previous_run,
)
from ._output import result_line
from ._progress import errors_text, live_progress
from ._store import check_store_url, masked_url, open_token_manager

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "BadInput",
    "JobOptions",
    "StartRun",
    "Target",
    "run_async",
    "run_batch",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

T = TypeVar("T")

Target = Authorizer | str
"""An authorizer with its token, or a bare app id whose token comes from the token store."""

StartRun = Callable[[Client, list[Target], int], BulkRun[Any]]
"""Starts the bulk run for a command: ``(client, authorizers, concurrency) -> run``. It must
validate its own arguments (raising InvalidInputError) before anything is sent."""


class BadInput(click.ClickException):
    """A file given on the command line is unusable: exit code 2, message on standard error."""

    exit_code = EXIT_USAGE


@attrs.frozen
class JobOptions:
    """The options every batch command shares (the field names are the click parameter names)."""

    authorizers: str
    output: str
    resume: bool
    concurrency: int
    qps: float | None
    timeout: float
    base_url: str
    component_app_id: str
    progress: bool | None
    token_store: str | None = None
    component_app_secret: str | None = None


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a fresh event loop (uvloop when the ``speed`` extra is installed).

    On Ctrl-C the loop cancels ``main``, lets it clean up, then raises KeyboardInterrupt.
    """
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop
    except ImportError:
        pass
    else:
        loop_factory = uvloop.new_event_loop
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main)
    return asyncio.run(main)  # pragma: no cover - Python 3.10: the default loop


def _read_authorizers(path: str, app_ids_only: bool) -> list[Target]:
    if path == "-":
        data = sys.stdin.buffer.read()
        source = "<stdin>"
    else:
        source = path
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise InputFileError(path, None, f"cannot read: {exc.strerror}") from None
    if app_ids_only:
        return list(parse_app_ids(data, source))
    return list(parse_authorizers(data, source))


def _app_id(target: Target) -> str:
    return target if isinstance(target, str) else target.app_id


class _Tally:
    """Counts what the summary reports beyond the run's own counters."""

    def __init__(self) -> None:
        self.retries = 0
        self.outcomes: collections.Counter[str] = collections.Counter()

    def add(self, attempts: int, value: object) -> None:
        self.retries += max(0, attempts - 1)
        if isinstance(value, ReconcileResult):
            if value.changed:
                self.outcomes["changed"] += 1
            elif value.dry_run and not value.plan.changes.empty:
                self.outcomes["would change"] += 1
            else:
                self.outcomes["already as desired"] += 1


def run_batch(options: JobOptions, label: str, start: StartRun) -> int:
    """Run one batch command to the end and return its exit code.

    Everything that can be refused is checked before the output file is touched and before any
    call is made: the options, the whole authorizers file, the output file of an earlier run
    (``--resume``), and the command's own arguments (``start`` validates them).

    Returns:
        0 when every authorizer succeeded, 1 when some failed (counting failed lines an
        earlier run left in a resumed output file), 130 when interrupted.

    Raises:
        click.UsageError, BadInput: Bad usage or a bad file (exit code 2).
    """
    if options.resume and options.output == "-":
        raise click.UsageError("--resume needs --output FILE (it reads what an earlier run wrote)")
    if options.token_store is not None:
        try:
            check_store_url(options.token_store)
        except InvalidInputError as exc:
            raise click.UsageError(str(exc)) from None
        if not options.component_app_secret:
            raise click.UsageError(
                "--token-store needs --component-app-secret (or KUAISHOU_COMPONENT_APP_SECRET) "
                "to renew tokens"
            )
    try:
        authorizers = _read_authorizers(options.authorizers, options.token_store is not None)
        previous = read_previous_run(options.output) if options.resume else None
    except InputFileError as exc:
        raise BadInput(str(exc)) from None
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    show = err.is_terminal if options.progress is None else options.progress
    try:
        return run_async(_run(options, label, start, authorizers, previous, err if show else None))
    except KeyboardInterrupt:
        if options.progress is not False:
            done = "" if options.output == "-" else f"; rerun with --resume to finish {label}"
            err.print(f"{label}: interrupted{done}", markup=False, soft_wrap=True)
        return EXIT_INTERRUPTED


async def _run(
    options: JobOptions,
    label: str,
    start: StartRun,
    authorizers: list[Target],
    previous: PreviousRun | None,
    console: Console | None,
) -> int:
    done = previous.outcomes if previous is not None else {}
    pending = [a for a in authorizers if _app_id(a) not in done]
    skipped = len(authorizers) - len(pending)
    failed_before = sum(1 for a in authorizers if done.get(_app_id(a)) is False)
    rate_limit = RateLimit() if options.qps is None else RateLimit(per_authorizer_qps=options.qps)
    manager = None
    try:
        if options.token_store is not None:
            assert options.component_app_secret is not None  # checked by run_batch
            manager = open_token_manager(
                options.token_store,
                options.component_app_id,
                options.component_app_secret,
                options.base_url,
            )
        client = Client(
            options.component_app_id,
            base_url=options.base_url,
            timeout=options.timeout,
            rate_limit=rate_limit,
            token_provider=manager,
        )
    except InvalidInputError as exc:
        if manager is not None:
            await manager.aclose()
        raise click.UsageError(str(exc)) from None
    if manager is not None and console is not None:
        console.print(
            f"{label}: tokens from {masked_url(options.token_store or '')}",
            markup=False,
            soft_wrap=True,
        )
    try:
        keep = previous.keep_bytes if previous is not None else None
        counts = (skipped, failed_before)
        return await _run_with(client, options, label, start, pending, keep, counts, console)
    finally:
        if manager is not None:
            await manager.aclose()


async def _run_with(
    client: Client,
    options: JobOptions,
    label: str,
    start: StartRun,
    pending: list[Target],
    keep: int | None,
    counts: tuple[int, int],
    console: Console | None,
) -> int:
    skipped, failed_before = counts
    async with client:
        try:
            run = start(client, pending, options.concurrency)
        except InvalidInputError as exc:
            raise click.UsageError(str(exc)) from None
        try:
            if options.output == "-":
                sink = JsonLinesSink(sys.stdout.buffer, owned=False)
            else:
                sink = JsonLinesSink.open(options.output, append_after=keep)
        except InputFileError as exc:
            await run.aclose()
            raise BadInput(str(exc)) from None
        tally = _Tally()
        try:
            async with run, live_progress(console, label, len(pending), run.progress):
                async for result in run:
                    sink.write(result_line(result))
                    tally.add(result.attempts, result.value)
        finally:
            # Reached on Ctrl-C too: every completed line is already flushed, so the file is
            # ready for --resume.
            sink.close()
            if console is not None:
                summary = _summary(label, run, tally, skipped, failed_before)
                console.print(summary, markup=False, soft_wrap=True)
    return EXIT_FAILED if run.progress.failed or failed_before else EXIT_OK


def _summary(label: str, run: BulkRun[Any], tally: _Tally, skipped: int, failed_before: int) -> str:
    s = run.summary()
    text = f"{label}: {s.total:,} done: {s.ok:,} ok, {s.failed:,} failed"
    if s.errors_by_class:
        text += f" ({errors_text(s.errors_by_class)})"
    text += f" in {s.elapsed:.1f}s, {s.rate:,.0f}/s"
    if tally.retries:
        text += f"; {tally.retries:,} retries"
    if tally.outcomes:
        text += "; " + ", ".join(f"{k} {v:,}" for k, v in sorted(tally.outcomes.items()))
    if skipped:
        text += f"; {skipped:,} skipped as already in the output"
        if failed_before:
            text += f" ({failed_before:,} of them failed)"
    return text
