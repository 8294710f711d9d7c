"""``kuaishou-mp fake-server``: the bundled fake platform as a standalone local server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import signal

from rich.console import Console

from ..testing import FakeKuaishou
from ._job import EXIT_OK, BadInput, run_async

__all__ = ["serve", "wait_for_stop"]


def serve(
    *,
    host: str,
    port: int,
    count: int,
    authorizers_file: str,
    component_app_id: str,
    latency: float,
    qps_limit: float | None,
    duration: float | None,
) -> int:
    """Serve until Ctrl-C, SIGTERM or ``duration`` seconds; return the exit code (0).

    Raises:
        BadInput: The authorizers file cannot be written or the port cannot be bound.
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    fake = FakeKuaishou(
        component_app_id=component_app_id,
        latency=latency,
        qps_limit=qps_limit,
        # A long-running server must not keep a record of every request it ever answered.
        record_requests=False,
    )
    apps = fake.add_authorizers(count)
    try:
        with open(authorizers_file, "w", encoding="utf-8") as f:
            for app in apps:
                line = {"app_id": app.app_id, "access_token": app.access_token}
                f.write(json.dumps(line) + "\n")
    except OSError as exc:
        raise BadInput(f"{authorizers_file}: cannot write: {exc.strerror}") from None
    with contextlib.suppress(KeyboardInterrupt):
        run_async(_serve(fake, host, port, count, authorizers_file, duration, err))
    err.print("fake-server: stopped", markup=False)
    return EXIT_OK


async def _serve(
    fake: FakeKuaishou,
    host: str,
    port: int,
    count: int,
    authorizers_file: str,
    duration: float | None,
    err: Console,
) -> None:
    try:
        base_url = await fake.start(host, port)
    except OSError as exc:
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    try:
        file_arg = shlex.quote(authorizers_file)
        env = (
            f"KUAISHOU_BASE_URL={shlex.quote(base_url)} "
            f"KUAISHOU_COMPONENT_APP_ID={shlex.quote(fake.component_app_id)}"
        )
        err.print(
            f"Fake Kuaishou platform serving on {base_url}\n"
            f"component app id: {fake.component_app_id}\n"
            f"{count:,} fake authorizers written to {authorizers_file}\n"
            "Try:\n"
            f"  export {env}\n"
            f"  kuaishou-mp app-info --authorizers {file_arg}\n"
            f"  kuaishou-mp reconcile webview --dry-run --webview example.com "
            f"--authorizers {file_arg}\n"
            "Press Ctrl-C to stop.",
            markup=False,
            soft_wrap=True,
        )
        await wait_for_stop(duration)
    finally:
        await fake.stop()


async def wait_for_stop(duration: float | None) -> None:
    """Return after ``duration`` seconds or on SIGTERM (Ctrl-C cancels the task instead)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A container stops with SIGTERM: shut down as cleanly as on Ctrl-C.
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not Unix or
        # not the main thread: Ctrl-C still works.
        installed = False
    else:
        installed = True
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
