"""Where access tokens come from: the :class:`TokenProvider` protocol and an in-memory provider.

With a provider configured, every call accepts a bare app id. When the platform answers
"token expired" (100200108), the client calls :meth:`TokenProvider.invalidate` with exactly the
token that failed, fetches a fresh one and retries once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, runtime_checkable

from .errors import TokenUnavailableError

__all__ = ["InMemoryTokenProvider", "TokenProvider", "TokenUnavailableError"]


@runtime_checkable
class TokenProvider(Protocol):
    """Supplies authorizer access tokens by app id.

    Implementations must make :meth:`invalidate` compare-and-invalidate (forget the token only if
    it is still the current one), and should make a refresh single-flight (one refresh per app id
    at a time, however many calls wait for it).
    """

    async def get_token(self, app_id: str) -> str:
        """Return a live access token for ``app_id``.

        Args:
            app_id: The authorizer's app id.

        Returns:
            Its authorizer access token.

        Raises:
            KuaishouError: No token can be had (for example :class:`TokenUnavailableError`);
                the call that asked fails with it.
        """
        ...

    async def invalidate(self, app_id: str, token: str) -> None:
        """Forget ``token`` for ``app_id`` if it is still the current one.

        Called by the client with exactly the token the platform reported as expired. If
        another task already replaced it, the replacement must be kept.

        Args:
            app_id: The authorizer's app id.
            token: The token that failed.
        """
        ...


class InMemoryTokenProvider:
    """Tokens in a dict, optionally refreshed by your own coroutine.

    Args:
        tokens: Initial tokens by app id.
        refresh: ``async refresh(app_id) -> token``, called when no token is held (at first use
            or after :meth:`invalidate`). Concurrent callers for one app id share one refresh.
            Without it, an app id with no token raises :class:`TokenUnavailableError`.
    """

    def __init__(
        self,
        tokens: Mapping[str, str] | None = None,
        *,
        refresh: Callable[[str], Awaitable[str]] | None = None,
    ) -> None:
        self._tokens: dict[str, str] = dict(tokens or {})
        self._refresh = refresh
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self._tokens)} tokens>)"

    def set_token(self, app_id: str, token: str) -> None:
        """Store ``token`` as the current token of ``app_id``.

        Args:
            app_id: The authorizer's app id.
            token: Its authorizer access token.
        """
        self._tokens[app_id] = token

    async def get_token(self, app_id: str) -> str:
        """Return the held token, refreshing it (single-flight) when none is held.

        Args:
            app_id: The authorizer's app id.

        Returns:
            The held or refreshed token.

        Raises:
            TokenUnavailableError: No token is held and no ``refresh`` was given.
        """
        token = self._tokens.get(app_id)
        if token is not None:
            return token
        if self._refresh is None:
            raise TokenUnavailableError("no access token for this app id", app_id=app_id)
        lock = self._locks.setdefault(app_id, asyncio.Lock())
        try:
            async with lock:
                # Whoever held the lock before us may have refreshed already.
                token = self._tokens.get(app_id)
                if token is None:
                    token = await self._refresh(app_id)
                    self._tokens[app_id] = token
                return token
        finally:
            if not lock.locked() and self._locks.get(app_id) is lock:
                del self._locks[app_id]

    async def invalidate(self, app_id: str, token: str) -> None:
        """Forget ``token`` if it is still the current one (compare-and-invalidate).

        Args:
            app_id: The authorizer's app id.
            token: The token that failed.
        """
        if self._tokens.get(app_id) == token:
            del self._tokens[app_id]
