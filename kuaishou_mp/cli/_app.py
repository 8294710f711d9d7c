"""The click commands of ``kuaishou-mp``; their help texts are the command line's documentation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler

from .. import __version__
from .._client import DEFAULT_BASE_URL, Client
from ..bulk import BulkRun
from ..domains import ReconcileMode
from ..models import DomainAction, ServerDomains, WebviewDomains
from ._job import JobOptions, Target, run_batch
from ._options import (
    batch_options,
    check_lists,
    domain_option,
    parse_domains,
    server_domain_options,
    server_lists,
)

__all__ = ["cli"]

F = TypeVar("F", bound=Callable[..., Any])

_EPILOG = """\b
Output: one JSON line per authorizer, as results complete:
  {"app_id": ..., "ok": true, "result": {...}}
  {"app_id": ..., "ok": false, "error": {"type": ..., "code": ..., "message": ...}}
Exit codes: 0 all succeeded, 1 some failed, 2 bad usage or input file, 130 interrupted.
"""


def _finish(code: int) -> None:
    ctx = click.get_current_context()
    ctx.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kuaishou-mp")
@click.option(
    "--verbose",
    "-v",
    count=True,
    help="Log the SDK's retries (-v) or every request (-vv) to standard error.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Batch jobs over the mini-programs that authorized your Kuaishou third-party platform.

    Start with `kuaishou-mp demo`. To try the other commands locally, run
    `kuaishou-mp fake-server` in another terminal and follow what it prints.
    """
    if verbose:
        logger = logging.getLogger("kuaishou_mp")
        handler = RichHandler(console=Console(stderr=True), show_path=False)
        level = logging.DEBUG if verbose > 1 else logging.WARNING
        handler.setLevel(level)
        old_level = logger.level
        logger.setLevel(level)
        logger.addHandler(handler)

        def restore() -> None:
            logger.removeHandler(handler)
            logger.setLevel(old_level)

        ctx.call_on_close(restore)
    else:
        # Without any handler Python's last-resort handler would print the SDK's retry
        # warnings over the progress bar; the outcome of each call is in the output anyway.
        logger = logging.getLogger("kuaishou_mp")
        null = logging.NullHandler()
        logger.addHandler(null)
        ctx.call_on_close(lambda: logger.removeHandler(null))


@cli.command("app-info", epilog=_EPILOG)
@batch_options
def app_info(**job: Any) -> None:
    """Read the basic info of every mini-program in --authorizers.

    Each result is the platform's app info with its own field names (app_name, status,
    subject, app_category, ...).
    """

    def start(client: Client, authorizers: list[Target], concurrency: int) -> BulkRun[Any]:
        return client.bulk_app_info(authorizers, concurrency=concurrency)

    _finish(run_batch(JobOptions(**job), "app-info", start))


_ACTIONS = click.Choice([a.value for a in DomainAction])
_SERVER_RESULT = ", ".join(f'"{name}": [...]' for name in ServerDomains.LISTS)
_SERVER_DOMAIN_HELP = f"""
Add, delete, set (overwrite) or get the server domains of every mini-program.

ACTION is add, delete, set or get. Lists you do not name are left alone (and `get` takes
none); `set --udp ''` clears a list. Each result is the configuration after the action:
{{{_SERVER_RESULT}}}. Deleting a domain a mini-program does not have fails for it with
DomainNotFoundError (403106).
"""


@cli.command("server-domain", epilog=_EPILOG, help=_SERVER_DOMAIN_HELP)
@click.argument("action", type=_ACTIONS)
@server_domain_options
@batch_options
def server_domain(action: str, **job: Any) -> None:
    """The ``server-domain`` command; its help, ``_SERVER_DOMAIN_HELP``, names the lists."""
    # Any: the keyword names are ServerDomains.LISTS, which a dict type cannot spell.
    lists: dict[str, Any] = server_lists(job)
    check_lists(action, lists)

    def start(client: Client, authorizers: list[Target], concurrency: int) -> BulkRun[Any]:
        return client.bulk_server_domain(
            authorizers,
            action,
            concurrency=concurrency,
            **lists,
        )

    _finish(run_batch(JobOptions(**job), f"server-domain {action}", start))


@cli.command("webview-domain", epilog=_EPILOG)
@click.argument("action", type=_ACTIONS)
@domain_option("webview", "webview")
@batch_options
def webview_domain(action: str, webview: tuple[str, ...], **job: Any) -> None:
    """Add, delete, set (overwrite) or get the webview domains of every mini-program.

    ACTION is add, delete, set or get; `get` takes no --webview, `set --webview ''` clears the
    list. Each result is {"webview": [...]} after the action.
    """
    domains = parse_domains(webview)
    check_lists(action, {"webview": domains})

    def start(client: Client, authorizers: list[Target], concurrency: int) -> BulkRun[Any]:
        return client.bulk_webview_domain(
            authorizers, action, concurrency=concurrency, webview=domains
        )

    _finish(run_batch(JobOptions(**job), f"webview-domain {action}", start))


_RECONCILE_EPILOG = (
    """\b
Each result is the plan and its outcome:
  {"mode": "ensure", "dry_run": true, "changed": false,
   "changes": {"add": {LIST: [...]}, "delete": {LIST: [...]}},
   "calls": [{"action": "add", LIST: [...]}],
   "before": {...}, "expected": {...}, "after": null}
"""
    + _EPILOG
)


@cli.group()
def reconcile() -> None:
    """Bring the server or webview domains of every mini-program to a goal, with a plan.

    Each mini-program's domains are read, compared with the goal, and changed with at most one
    call. --mode ensure (default) adds the domains that are missing; remove deletes those
    present; exact makes every list exactly the given one, which CLEARS the lists you do not
    name. Use --dry-run first: it only reads and prints the plan.
    """


_MODE = click.option(
    "--mode",
    type=click.Choice([m.value for m in ReconcileMode]),
    default=ReconcileMode.ENSURE.value,
    show_default=True,
    help="ensure: add what is missing; remove: delete what is present; exact: make the lists "
    "exactly these (lists not named become empty).",
)
_DRY_RUN = click.option(
    "--dry-run", is_flag=True, help="Only read and print the plan; change nothing."
)


def _need_domains(lists: dict[str, list[str] | None]) -> dict[str, list[str]]:
    given = {name: values for name, values in lists.items() if values is not None}
    if not any(given.values()):
        # Refused even for exact: an empty goal would clear every list of every mini-program.
        flags = ", ".join("--" + name.replace("_", "-") for name in lists)
        raise click.UsageError(f"give at least one domain ({flags})")
    return given


_FLAG_NAMES = ", ".join(name.replace("_", "-") for name in ServerDomains.LISTS)


@reconcile.command(
    "server", epilog=_RECONCILE_EPILOG, help=f"Reconcile the server domain lists ({_FLAG_NAMES})."
)
@_MODE
@_DRY_RUN
@server_domain_options
@batch_options
def reconcile_server(mode: str, dry_run: bool, **job: Any) -> None:
    """The ``reconcile server`` command; its help names the lists."""
    given = _need_domains(server_lists(job))
    desired = ServerDomains(**given)

    def start(client: Client, authorizers: list[Target], concurrency: int) -> BulkRun[Any]:
        return client.bulk_reconcile_server_domains(
            authorizers, desired, mode, dry_run=dry_run, concurrency=concurrency
        )

    label = f"reconcile server ({mode}{', dry run' if dry_run else ''})"
    _finish(run_batch(JobOptions(**job), label, start))


@reconcile.command("webview", epilog=_RECONCILE_EPILOG)
@_MODE
@_DRY_RUN
@domain_option("webview", "webview")
@batch_options
def reconcile_webview(mode: str, dry_run: bool, webview: tuple[str, ...], **job: Any) -> None:
    """Reconcile the webview (business) domains."""
    desired = WebviewDomains(**_need_domains({"webview": parse_domains(webview)}))

    def start(client: Client, authorizers: list[Target], concurrency: int) -> BulkRun[Any]:
        return client.bulk_reconcile_webview_domains(
            authorizers, desired, mode, dry_run=dry_run, concurrency=concurrency
        )

    label = f"reconcile webview ({mode}{', dry run' if dry_run else ''})"
    _finish(run_batch(JobOptions(**job), label, start))


@cli.command()
@click.option(
    "--authorizers",
    "count",
    type=click.IntRange(min=1),
    default=3000,
    show_default=True,
    help="How many fake mini-programs.",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Calls in flight at once.",
)
@click.option(
    "--progress/--quiet",
    default=None,
    help="Show the progress bars on standard error (default: when it is a terminal).",
)
def demo(count: int, concurrency: int, progress: bool | None) -> None:
    """Watch the SDK do its main job against a local fake platform; no account needed.

    Starts the bundled fake Kuaishou platform on 127.0.0.1 (a free port, 5 ms latency, a few
    injected faults: gateway errors, dropped connections, throttling, revoked tokens), reads
    the app info of every fake mini-program in bulk, ensures a webview domain on all of them
    with a bulk reconciliation, and prints a summary. Exits 0 when it ran to the end.
    """
    from ._demo import run_demo

    _finish(run_demo(count, concurrency, progress))


@cli.command("fake-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port to listen on (default: a free one).",
)
@click.option(
    "--authorizers",
    "count",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="How many fake mini-programs to register.",
)
@click.option(
    "--authorizers-file",
    type=click.Path(dir_okay=False, writable=True),
    default="fake-authorizers.jsonl",
    show_default=True,
    help="Where to write their app ids and (fake) tokens, as JSON Lines.",
)
@click.option(
    "--component-app-id",
    default="ks_component_fake",
    show_default=True,
    help="The component app id the fake accepts.",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds added to every request.",
)
@click.option(
    "--qps-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Answer 'rate limited' (400002) beyond this many requests per second per app.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many seconds (default: run until Ctrl-C or SIGTERM).",
)
def fake_server(
    host: str,
    port: int,
    count: int,
    authorizers_file: str,
    component_app_id: str,
    latency: float,
    qps_limit: float | None,
    duration: float | None,
) -> None:
    """Run the bundled fake platform so every command can be tried locally.

    Writes an authorizers file for it, prints its base URL and component app id (and the
    commands to try) on standard error, and serves until interrupted (exit 0).
    """
    from ._fake_server import serve

    _finish(
        serve(
            host=host,
            port=port,
            count=count,
            authorizers_file=authorizers_file,
            component_app_id=component_app_id,
            latency=latency,
            qps_limit=qps_limit,
            duration=duration,
        )
    )


@cli.command("serve-events")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (0.0.0.0 for all).",
)
@click.option("--port", type=click.IntRange(0, 65535), required=True, help="Port to listen on.")
@click.option(
    "--path",
    default="/kuaishou/push",
    show_default=True,
    help="The URL path pushes are POSTed to (your authorization-event URL's path).",
)
@click.option(
    "--token-store",
    envvar="KUAISHOU_TOKEN_STORE",
    required=True,
    metavar="URL",
    help="The Redis the ticket goes to (redis://, rediss:// or unix://; env "
    "KUAISHOU_TOKEN_STORE); give every other command the same URL.",
)
@click.option(
    "--component-app-id",
    envvar="KUAISHOU_COMPONENT_APP_ID",
    required=True,
    help="Your third-party application's app id (env KUAISHOU_COMPONENT_APP_ID).",
)
@click.option(
    "--component-app-secret",
    envvar="KUAISHOU_COMPONENT_APP_SECRET",
    required=True,
    help="Its secret (env KUAISHOU_COMPONENT_APP_SECRET). Never printed.",
)
@click.option(
    "--verification-token",
    envvar="KUAISHOU_VERIFICATION_TOKEN",
    required=True,
    help="The message verification token (消息验证 TOKEN; env KUAISHOU_VERIFICATION_TOKEN). "
    "Never printed.",
)
@click.option(
    "--encryption-key",
    envvar="KUAISHOU_ENCRYPTION_KEY",
    required=True,
    help="The message encryption key (消息加密解密 KEY; env KUAISHOU_ENCRYPTION_KEY). "
    "Never printed.",
)
@click.option(
    "--base-url",
    envvar="KUAISHOU_BASE_URL",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="The platform's base URL (env KUAISHOU_BASE_URL).",
)
@click.option(
    "--start-push-ticket",
    is_flag=True,
    help="Once listening, ask the platform to start pushing tickets (start_push_ticket).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many seconds (default: run until Ctrl-C or SIGTERM).",
)
def serve_events(**options: Any) -> None:
    """Receive the platform's pushes: tickets into the shared token store, for every process.

    Verifies each push's kwaisign signature, decrypts it, stores a ticket in --token-store
    (never an older one over a newer one), applies each message once (across every receiver
    on the same Redis) and answers as the platform expects. Prints one line per push applied
    (its event name and msgId, never a ticket or a secret) on standard error.
    """
    from ._serve_events import serve_events as serve

    _finish(serve(**options))
