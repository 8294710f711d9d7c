"""``--token-store URL``: a TokenManager on a shared Redis, for the commands that take one."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..auth import AuthClient, RedisTokenStorage, TokenManager
from ..errors import InvalidInputError

__all__ = ["STORE_SCHEMES", "check_store_url", "masked_url", "open_token_manager"]

STORE_SCHEMES = ("redis", "rediss", "unix")


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_store_url(url: str) -> str:
    """The URL if it names a Redis token store.

    Raises:
        InvalidInputError: Another scheme (the message masks a password).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in STORE_SCHEMES:
        raise InvalidInputError(
            f"--token-store must be a redis://, rediss:// or unix:// URL, got {masked_url(url)!r}"
        )
    return url


def open_token_manager(
    url: str, component_app_id: str, component_app_secret: str, base_url: str
) -> TokenManager:
    """A TokenManager whose tokens and ticket live in the Redis at ``url`` (closed with it).

    Raises:
        InvalidInputError: A malformed URL or argument.
    """
    check_store_url(url)
    try:
        storage = RedisTokenStorage.from_url(url)
    except ValueError as exc:
        raise InvalidInputError(f"--token-store {masked_url(url)!r}: {exc}") from None
    auth = AuthClient(component_app_id, component_app_secret, base_url=base_url)
    return TokenManager(auth, storage=storage)
