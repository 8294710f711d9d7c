"""The in-process token storage: dicts and ``asyncio`` locks, for one process (and tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ._locks import KeyedLocks
from ._protocol import LockTimeoutError, StoredToken

__all__ = ["InMemoryTokenStorage"]


def _older(event_time: int | None, stored_time: int | None) -> bool:
    """Whether a ticket of ``event_time`` is older than the stored one (never go backwards)."""
    return event_time is not None and stored_time is not None and event_time < stored_time


class InMemoryTokenStorage:
    """Tokens in dicts, locks as ``asyncio.Lock``: for one process (and tests).

    Nothing survives the process; use :class:`RedisTokenStorage` to share tokens and keep
    refresh tokens durably.
    """

    def __init__(self) -> None:
        self._tickets: dict[str, tuple[str, int | None]] = {}
        self._component: dict[str, StoredToken] = {}
        self._access: dict[tuple[str, str], StoredToken] = {}
        self._refresh: dict[tuple[str, str], StoredToken] = {}
        self._locks: KeyedLocks[tuple[str, str | None]] = KeyedLocks()

    def __repr__(self) -> str:
        return f"<InMemoryTokenStorage {len(self._access)} access tokens>"

    async def load_ticket(self, component_app_id: str) -> str | None:
        """The latest pushed component ticket, or ``None``."""
        stored = self._tickets.get(component_app_id)
        return stored[0] if stored is not None else None

    async def save_ticket(
        self, component_app_id: str, ticket: str, event_time: int | None = None
    ) -> bool:
        """Replace the component ticket, unless the stored one has a later ``event_time``."""
        stored = self._tickets.get(component_app_id)
        if _older(event_time, stored[1] if stored is not None else None):
            return False
        self._tickets[component_app_id] = (ticket, event_time)
        return True

    async def load_component_token(self, component_app_id: str) -> StoredToken | None:
        """The current component access token, or ``None``."""
        return self._component.get(component_app_id)

    async def save_component_token(self, component_app_id: str, token: StoredToken) -> None:
        """Replace the component access token."""
        self._component[component_app_id] = token

    async def invalidate_component_token(self, component_app_id: str, token: str) -> bool:
        """Delete the component token if its value is ``token``; return whether it was."""
        current = self._component.get(component_app_id)
        if current is None or current.value != token:
            return False
        del self._component[component_app_id]
        return True

    async def load_access_token(self, component_app_id: str, app_id: str) -> StoredToken | None:
        """The authorizer's current access token, or ``None``."""
        return self._access.get((component_app_id, app_id))

    async def load_refresh_token(self, component_app_id: str, app_id: str) -> StoredToken | None:
        """The authorizer's refresh token, or ``None``."""
        return self._refresh.get((component_app_id, app_id))

    async def save_authorizer_tokens(
        self,
        component_app_id: str,
        app_id: str,
        access: StoredToken,
        refresh: StoredToken | None,
    ) -> None:
        """Replace the access token and, when given, the refresh token (no await between)."""
        self._access[component_app_id, app_id] = access
        if refresh is not None:
            self._refresh[component_app_id, app_id] = refresh

    async def invalidate_access_token(self, component_app_id: str, app_id: str, token: str) -> bool:
        """Delete the access token if its value is ``token``; return whether it was."""
        key = (component_app_id, app_id)
        current = self._access.get(key)
        if current is None or current.value != token:
            return False
        del self._access[key]
        return True

    @contextlib.asynccontextmanager
    async def lock(
        self, component_app_id: str, app_id: str | None, *, ttl: float, timeout: float
    ) -> AsyncIterator[None]:
        """An ``asyncio.Lock`` per authorizer (``ttl`` is moot: a holder cannot die alone).

        Raises:
            LockTimeoutError: Not acquired within ``timeout`` seconds.
        """
        with self._locks.hold((component_app_id, app_id)) as lock:
            failure = None
            if timeout <= 0:
                if lock.locked():
                    raise LockTimeoutError("the refresh lock is held", app_id=app_id)
                await lock.acquire()  # free: taken at once, without yielding
            else:
                try:
                    await asyncio.wait_for(lock.acquire(), timeout)
                except asyncio.TimeoutError:
                    failure = LockTimeoutError(
                        f"the refresh lock was held for over {timeout:g}s", app_id=app_id
                    )
            if failure is not None:
                raise failure
            try:
                yield
            finally:
                lock.release()

    async def aclose(self) -> None:
        """Nothing to release."""
