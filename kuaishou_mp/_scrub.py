"""Remove secrets from text before it reaches an exception message, a log line or a repr."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["excerpt", "scrub"]

# Any query or form parameter whose name says it carries a secret, however it is spelled.
_SECRET_PARAM = re.compile(
    r"(?i)\b([a-z_]*(?:token|secret|ticket|code)[a-z_]*)=([^&\s'\"<>]*)",
)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with secret-looking query parameters and each given secret masked."""
    text = _SECRET_PARAM.sub(r"\1=***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def excerpt(body: bytes, secrets: Iterable[str | None] = (), limit: int = 160) -> str:
    """A short, single-line, scrubbed excerpt of a response body for an error message."""
    # Decode well past the limit so a secret cut at the byte boundary lies beyond what we keep.
    text = body[: limit * 8].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return scrub(text, secrets)[:limit]
