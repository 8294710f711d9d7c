"""The live progress bar (rich) for a bulk run, drawn on standard error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..bulk import BulkProgress

__all__ = ["errors_text", "live_progress"]

_REFRESH_SECONDS = 0.1


def errors_text(errors_by_class: Mapping[str, int]) -> str:
    """``"AuthError 3, ServerError 1"``, most common first; empty when there are none."""
    ranked = sorted(errors_by_class.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {count:,}" for name, count in ranked)


@contextlib.asynccontextmanager
async def live_progress(
    console: Console | None, description: str, total: int, progress: BulkProgress
) -> AsyncIterator[None]:
    """Show ``progress`` as a bar on ``console`` while the body runs; nothing when ``None``.

    The bar is redrawn from a task on the event loop rather than rich's refresh thread: the
    counters are only ever touched by the loop, and a loop too busy to redraw is better shown
    as a stalled bar than read from another thread.
    """
    if console is None:
        yield
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}", markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        # Last, as the longest: on a narrow terminal it is the part that gets cut.
        TextColumn("{task.fields[status]}", markup=False),
        console=console,
        auto_refresh=False,
    )
    task_id = bar.add_task(description, total=total, rate="", status="")

    def draw() -> None:
        status = f"ok {progress.ok:,} failed {progress.failed:,}"
        if progress.errors_by_class:
            status += f" ({errors_text(progress.errors_by_class)})"
        bar.update(task_id, completed=progress.done, rate=f"{progress.rate:,.0f}/s", status=status)
        bar.refresh()

    async def redraw() -> None:
        while True:
            draw()
            await asyncio.sleep(_REFRESH_SECONDS)

    with bar:
        painter = asyncio.create_task(redraw())
        try:
            yield
        finally:
            painter.cancel()
            # wait() rather than await: the painter's CancelledError is not ours to raise,
            # while a cancellation of this task during the wait still propagates.
            await asyncio.wait([painter])
            draw()
