"""The ``kuaishou-mp`` command line: bulk jobs over authorizers files, a demo and a fake server.

Needs the ``cli`` extra (click and rich): ``pip install 'kuaishou-mp[cli]'``. The core package
never imports this one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def main(args: Sequence[str] | None = None) -> None:
    """Run ``kuaishou-mp`` with ``args`` (default: ``sys.argv[1:]``); exits the process.

    Exit codes: 0 all succeeded, 1 some authorizers failed, 2 bad usage or input file,
    130 interrupted.
    """
    try:
        from ._app import cli
    except ModuleNotFoundError as exc:  # pragma: no cover - only without the cli extra
        if exc.name not in ("click", "rich"):
            raise
        sys.exit(
            f"kuaishou-mp needs the cli extra ({exc.name} is missing): "
            "pip install 'kuaishou-mp[cli]'"
        )
    cli.main(args=list(args) if args is not None else None, prog_name="kuaishou-mp")


def __getattr__(name: str) -> Any:
    # The click group, for documentation tools (imported lazily so `main` can explain a missing
    # extra instead of failing on import).
    if name == "cli":
        from ._app import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
