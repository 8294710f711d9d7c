"""The library's logger: a NullHandler, ``KUAISHOU_MP_LOG`` for a quick look, structured fields.

A library must not configure logging, so the ``kuaishou_mp`` logger gets only a
``NullHandler``. ``KUAISHOU_MP_LOG=info`` (or ``debug``) in the environment adds one stderr
handler at that level, so a user can see what the SDK does without writing logging config (as
``OPENAI_LOG`` does for openai-python).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

__all__ = ["ENV_VAR", "LOGGER_NAME", "log_fields", "setup_logging"]

LOGGER_NAME = "kuaishou_mp"
ENV_VAR = "KUAISHOU_MP_LOG"
_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG}
_FORMAT = "[%(asctime)s %(name)s %(levelname)s] %(message)s"


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler ``KUAISHOU_MP_LOG`` adds (a class of its own, so it is added once)."""


def setup_logging(environ: Mapping[str, str] | None = None) -> logging.Logger:
    """Give the library logger its NullHandler and, if asked by the environment, a stderr one.

    Idempotent: calling it again (a reload, a second import path) adds nothing twice. An
    unknown ``KUAISHOU_MP_LOG`` value adds no handler.
    """
    logger = logging.getLogger(LOGGER_NAME)
    handlers = logger.handlers
    if not any(type(h) is logging.NullHandler for h in handlers):
        logger.addHandler(logging.NullHandler())
    level = _LEVELS.get((os.environ if environ is None else environ).get(ENV_VAR, "").lower())
    if level is not None and not any(isinstance(h, _EnvHandler) for h in handlers):
        handler = _EnvHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(level)
    return logger


def log_fields(
    endpoint: str | None = None,
    app_id: str | None = None,
    attempt: int | None = None,
    result_code: int | None = None,
) -> dict[str, object]:
    """The ``extra=`` mapping for a per-call log record: structured fields for JSON logs.

    The keys carry a ``kuaishou_`` prefix (``kuaishou_endpoint``, ``kuaishou_app_id``,
    ``kuaishou_attempt``, ``kuaishou_result_code``) so they never collide with a
    ``LogRecord``'s own attributes or an application's fields; a field not given is left out.
    """
    fields: dict[str, object] = {}
    if endpoint is not None:
        fields["kuaishou_endpoint"] = endpoint
    if app_id is not None:
        fields["kuaishou_app_id"] = app_id
    if attempt is not None:
        fields["kuaishou_attempt"] = attempt
    if result_code is not None:
        fields["kuaishou_result_code"] = result_code
    return fields
