"""Remove secrets from text before it reaches an exception message, a log line or a repr."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["REDACTED", "excerpt", "redact_url", "scrub"]

# Any query or form parameter whose name says it carries a secret, however it is spelled.
_SECRET_PARAM = re.compile(
    r"(?i)\b([a-z_]*(?:token|secret|ticket|code)[a-z_]*)=([^&\s'\"<>]*)",
)
# A URL's userinfo (``user:password@``), which OpenTelemetry's conventions say never to record.
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@]*@")
REDACTED = "REDACTED"
"""What a secret in a URL is replaced with, as OpenTelemetry's HTTP conventions spell it."""
# The longest form a secret's character can take in a body: UTF-8 percent-encoded (%XX per byte,
# up to 4 bytes) is 12 characters.
_MAX_EXPANSION = 12


def _spellings(ch: str) -> str:
    """A regex for ``ch`` as itself, percent-encoded (any case) or JSON-escaped."""
    forms = [re.escape(ch)]
    forms.append("".join(f"%(?:{b:02X}|{b:02x})" for b in ch.encode()))
    if ch == " ":
        forms.append(r"\+")  # form encoding
    elif ch == "/":
        forms.append(r"\\/")  # JSON may escape a solidus
    elif ch in '"\\':
        forms.append(re.escape("\\" + ch))
    if not ch.isascii():
        forms.append(f"\\\\u(?:{ord(ch):04x}|{ord(ch):04X})")
    return f"(?:{'|'.join(forms)})"


def _mask(text: str, secret: str) -> str:
    text = text.replace(secret, "***")
    if not (secret.isascii() and secret.isalnum()):
        # A platform (or a proxy) may echo the token the way it travelled: percent-encoded in
        # the query string, or JSON-escaped in a body.
        pattern = "".join(
            re.escape(ch) if ch.isascii() and ch.isalnum() else _spellings(ch) for ch in secret
        )
        text = re.sub(pattern, "***", text)
    return text


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with secret-looking query parameters and each given secret masked.

    Each secret is masked as it is and in its percent-encoded and JSON-escaped spellings.
    """
    text = _SECRET_PARAM.sub(r"\1=***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = _mask(text, secret)
    return text


def redact_url(url: object) -> str:
    """``url`` (a string or a yarl URL) with every secret replaced by ``REDACTED``.

    The value of every query parameter whose name says it carries a secret (``access_token``,
    ``component_access_token``, ``ticket``, ``code``, ...) and any ``user:password@`` become
    ``REDACTED`` and a fragment is dropped; the rest of the URL is kept as it is, so the
    result is fit for ``url.full``. A value is taken to end at the next ``&`` or ``#``,
    whatever characters it holds, so no part of a token is kept.
    """
    # A fragment is never sent, so it is not part of the request.
    text = _USERINFO.sub(r"\1REDACTED:REDACTED@", str(url).partition("#")[0], count=1)
    head, sep, query = text.partition("?")
    if not sep:
        return text
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, eq, _ = part.partition("=")
        if eq and _SECRET_NAME.search(name):
            parts[i] = f"{name}={REDACTED}"
    return f"{head}?{'&'.join(parts)}"


# The names _SECRET_PARAM masks, and the usual names of signatures and passwords.
_SECRET_NAME = re.compile(r"(?i)token|secret|ticket|code|passw|sign")


def excerpt(body: bytes, secrets: Iterable[str | None] = (), limit: int = 160) -> str:
    """A short, single-line, scrubbed excerpt of a response body for an error message."""
    secrets = tuple(secrets)
    # Decode well past the limit so a secret cut at the byte boundary lies beyond what we keep.
    window = limit * 8
    text = body[:window].decode("utf-8", errors="replace")
    text = scrub(text, secrets)
    if len(body) > window:
        # A secret cut by the window's edge is not whole, so it was not masked; collapsing
        # whitespace below could pull it into the part we keep. Drop the edge.
        longest = max((len(s) for s in secrets if s), default=0)
        text = text[: max(0, len(text) - longest * _MAX_EXPANSION)]
    text = " ".join(text.split())
    return text[:limit]
