"""The command line's shared options: the batch options and the domain-list options."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from .._client import DEFAULT_BASE_URL
from ..models import DomainAction, ServerDomains
from ._io import APP_IDS_HELP, FORMAT_HELP

__all__ = [
    "batch_options",
    "check_lists",
    "domain_option",
    "parse_domains",
    "server_domain_options",
    "server_lists",
]

F = TypeVar("F", bound=Callable[..., Any])


def batch_options(command: F) -> F:
    """Add the options every batch command shares (collected into a JobOptions)."""
    options = [
        click.option(
            "--authorizers",
            required=True,
            metavar="FILE",
            help=f"The mini-programs to call: {FORMAT_HELP}; with --token-store, "
            f"{APP_IDS_HELP}. '-' reads standard input. The whole file is checked before any "
            "call; a bad line (or an app id listed twice) exits 2 naming the line.",
        ),
        click.option(
            "--token-store",
            envvar="KUAISHOU_TOKEN_STORE",
            default=None,
            metavar="URL",
            help="Take tokens from this shared Redis (redis://, rediss:// or unix://; env "
            "KUAISHOU_TOKEN_STORE), where `kuaishou-mp serve-events` keeps the pushed ticket: "
            "the authorizers file then lists app ids only, and tokens are obtained and renewed "
            "as needed. Needs --component-app-secret.",
        ),
        click.option(
            "--component-app-secret",
            envvar="KUAISHOU_COMPONENT_APP_SECRET",
            default=None,
            help="Your third-party application's secret (env KUAISHOU_COMPONENT_APP_SECRET), "
            "for --token-store. Never printed.",
        ),
        click.option(
            "--output",
            "-o",
            default="-",
            metavar="FILE",
            help="Where the JSON lines go (default: standard output). Lines are flushed as "
            "results complete. Never contains a token.",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="Skip app ids already present in --output (succeeded or failed) and append "
            "to it; continues a run that was interrupted. The exit code then also counts the "
            "failed lines already there. A missing file starts a fresh run.",
        ),
        click.option(
            "--concurrency",
            "-c",
            type=click.IntRange(min=1),
            default=100,
            show_default=True,
            help="Calls in flight at once.",
        ),
        click.option(
            "--qps",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Calls per second per authorizer (the SDK's RateLimit default, 5, when "
            "omitted); slowed further when the platform throttles.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            show_default=True,
            help="Seconds per attempt; failed attempts are retried by the SDK's default policy.",
        ),
        click.option(
            "--base-url",
            envvar="KUAISHOU_BASE_URL",
            default=DEFAULT_BASE_URL,
            show_default=True,
            help="The platform's base URL (env KUAISHOU_BASE_URL), e.g. a local fake-server.",
        ),
        click.option(
            "--component-app-id",
            envvar="KUAISHOU_COMPONENT_APP_ID",
            required=True,
            help="Your third-party application's app id (env KUAISHOU_COMPONENT_APP_ID).",
        ),
        click.option(
            "--progress/--quiet",
            default=None,
            help="Show the progress bar and summary on standard error (default: only when it "
            "is a terminal) / show nothing but errors.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def parse_domains(values: Sequence[str]) -> list[str] | None:
    """Repeated and comma-separated values as one list; None when the option was not given.

    ``--webview ''`` gives an empty list, so ``set`` can clear a list.
    """
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def domain_option(name: str, what: str) -> Callable[[F], F]:
    """A repeatable ``--name DOMAIN`` option for one domain list."""
    flag = "--" + name.replace("_", "-")
    return click.option(
        flag,
        name,
        multiple=True,
        metavar="DOMAIN",
        help=f"A domain for the {what} list; repeat or separate with commas.",
    )


def server_domain_options(command: F) -> F:
    """Add one ``--request``-style option per server-domain list (:attr:`ServerDomains.LISTS`)."""
    for name in reversed(ServerDomains.LISTS):
        command = domain_option(name, name)(command)
    return command


def check_lists(action: str, lists: dict[str, list[str] | None]) -> None:
    """Refuse what the SDK would refuse, in terms of this command line's flags."""
    flags = ", ".join("--" + name.replace("_", "-") for name in lists)
    given = any(values is not None for values in lists.values())
    if action == DomainAction.GET.value and given:
        raise click.UsageError(f"'get' takes no domain options ({flags})")
    if action != DomainAction.GET.value and not given:
        raise click.UsageError(f"{action!r} needs at least one of {flags}")


def server_lists(job: dict[str, Any]) -> dict[str, list[str] | None]:
    """Take the server-domain options out of a command's keyword arguments, parsed."""
    return {name: parse_domains(job.pop(name)) for name in ServerDomains.LISTS}
