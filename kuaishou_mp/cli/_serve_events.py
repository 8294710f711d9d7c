"""``kuaishou-mp serve-events``: the push receiver as a server, keeping the ticket in Redis."""

from __future__ import annotations

import contextlib

from aiohttp import web
from rich.console import Console

from ..auth import RedisTokenStorage
from ..errors import InvalidInputError
from ..events import ComponentTicket, PushEvent, PushReceiver, RedisPushDedupe
from ._fake_server import wait_for_stop
from ._job import EXIT_OK, BadInput, run_async
from ._store import masked_url, open_token_manager

__all__ = ["serve_events"]


def serve_events(
    *,
    host: str,
    port: int,
    path: str,
    token_store: str,
    component_app_id: str,
    component_app_secret: str,
    verification_token: str,
    encryption_key: str,
    base_url: str,
    start_push_ticket: bool,
    duration: float | None,
) -> int:
    """Receive pushes until Ctrl-C, SIGTERM or ``duration`` seconds; return the exit code (0).

    Raises:
        click.UsageError: A malformed option (no secret is ever shown).
        BadInput: The port cannot be bound.
    """
    import click

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        import cryptography  # noqa: F401 - decrypting needs it; say so now, not per push
    except ModuleNotFoundError:
        raise click.UsageError(
            "serve-events needs the events extra: pip install 'kuaishou-mp[events]'"
        ) from None
    try:
        manager = open_token_manager(token_store, component_app_id, component_app_secret, base_url)
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    storage = manager.storage
    assert isinstance(storage, RedisTokenStorage)

    def on_event(event: ComponentTicket | PushEvent) -> None:
        # Names and ids only: the ticket and any code stay out of the terminal.
        err.print(f"push {event.event} msg_id={event.msg_id} applied", markup=False)

    try:
        receiver = PushReceiver(
            component_app_id,
            verification_token,
            encryption_key,
            token_manager=manager,
            on_event=on_event,
            dedupe=RedisPushDedupe.for_storage(storage),
        )
    except InvalidInputError as exc:
        run_async(manager.aclose())
        raise click.UsageError(str(exc)) from None
    app = web.Application()
    app.router.add_post(path, receiver.aiohttp_handler())

    async def main() -> None:
        async with manager:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, host, port)
                try:
                    await site.start()
                except OSError as exc:
                    raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
                bound_host, bound_port = runner.addresses[0][:2]
                err.print(
                    f"Receiving pushes on http://{bound_host}:{bound_port}{path} for "
                    f"{component_app_id}; tickets go to {masked_url(token_store)}.\n"
                    "Press Ctrl-C to stop.",
                    markup=False,
                    soft_wrap=True,
                )
                if start_push_ticket:
                    await manager.start_push_ticket()
                    err.print("start_push_ticket: the platform will push tickets", markup=False)
                await wait_for_stop(duration)
            finally:
                await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        run_async(main())
    err.print("serve-events: stopped", markup=False)
    return EXIT_OK
