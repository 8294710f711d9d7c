"""The storage protocol the token manager speaks, what it stores, and how a storage fails."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

import attrs

from ...errors import LockTimeoutError, TokenStorageError

__all__ = ["LockTimeoutError", "StoredToken", "TokenStorage", "TokenStorageError"]


@attrs.frozen
class StoredToken:
    """A token as stored: its value and when it expires, in seconds since the epoch.

    Args:
        value: The token (a secret; left out of ``repr``).
        expires_at: When it stops working (``time.time()`` scale).
        refresh_at: When a refresh ahead of expiry is due; defaults to ``expires_at``.
    """

    value: str = attrs.field(repr=False)
    expires_at: float
    refresh_at: float = attrs.field()

    @refresh_at.default
    def _refresh_at_default(self) -> float:
        return self.expires_at

    def expired(self, now: float) -> bool:
        """Whether the token no longer works at ``now``."""
        return now >= self.expires_at

    def due(self, now: float) -> bool:
        """Whether a refresh is due at ``now`` (always true once expired)."""
        return now >= self.refresh_at or now >= self.expires_at


@runtime_checkable
class TokenStorage(Protocol):
    """What :class:`~kuaishou_mp.auth.TokenManager` needs from a storage.

    Implementations must make :meth:`save_authorizer_tokens` atomic (both tokens or neither,
    and a refresh token is replaced, never deleted first), and the ``invalidate_*`` methods
    compare-and-delete. :meth:`lock` gives mutual exclusion among every user of the storage.
    """

    async def load_ticket(self, component_app_id: str) -> str | None:
        """The latest pushed component ticket, or ``None``."""
        ...

    async def save_ticket(
        self, component_app_id: str, ticket: str, event_time: int | None = None
    ) -> bool:
        """Replace the component ticket, unless the stored one has a later ``event_time``.

        Atomic: of two tickets saved concurrently, the later by ``event_time`` stays. A
        ticket saved without an ``event_time`` always replaces the stored one (and has none).

        Returns:
            Whether ``ticket`` is now the stored one.
        """
        ...

    async def load_component_token(self, component_app_id: str) -> StoredToken | None:
        """The current component access token, or ``None``."""
        ...

    async def save_component_token(self, component_app_id: str, token: StoredToken) -> None:
        """Replace the component access token."""
        ...

    async def invalidate_component_token(self, component_app_id: str, token: str) -> bool:
        """Delete the component token if its value is ``token``; return whether it was."""
        ...

    async def load_access_token(self, component_app_id: str, app_id: str) -> StoredToken | None:
        """The authorizer's current access token, or ``None``."""
        ...

    async def load_refresh_token(self, component_app_id: str, app_id: str) -> StoredToken | None:
        """The authorizer's refresh token, or ``None``."""
        ...

    async def save_authorizer_tokens(
        self,
        component_app_id: str,
        app_id: str,
        access: StoredToken,
        refresh: StoredToken | None,
    ) -> None:
        """Atomically replace the access token and, when given, the refresh token."""
        ...

    async def invalidate_access_token(self, component_app_id: str, app_id: str, token: str) -> bool:
        """Delete the access token if its value is ``token``; return whether it was."""
        ...

    def lock(
        self, component_app_id: str, app_id: str | None, *, ttl: float, timeout: float
    ) -> AbstractAsyncContextManager[None]:
        """A lock on refreshing the authorizer's tokens (``app_id=None``: the component's).

        Args:
            ttl: Seconds after which the lock frees itself if its holder died.
            timeout: Seconds to wait for it; ``0`` tries once.

        Raises:
            LockTimeoutError: (on entering) not acquired within ``timeout``.
        """
        ...

    async def aclose(self) -> None:
        """Release what the storage holds (connections it owns). Idempotent."""
        ...
