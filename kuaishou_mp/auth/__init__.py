"""Platform authorization: the OAuth endpoints, and tokens kept fresh across processes.

* :class:`AuthClient`: typed calls for the five documented endpoints (start the ticket push,
  the component access token, the pre-authorization code, authorizer tokens from an
  authorization code, recovery of an authorization code).
* :class:`TokenManager`: a :class:`~kuaishou_mp.TokenProvider` that keeps the component token
  and the authorizers' access tokens fresh, one renewal at a time across processes.
* :class:`TokenStorage`: where tokens live; :class:`InMemoryTokenStorage` for one process,
  :class:`RedisTokenStorage` (extra ``kuaishou_mp[redis]``) to share them.
"""

from __future__ import annotations

from .client import AuthClient
from .manager import RefreshFunction, TokenManager
from .models import (
    AuthorizationCode,
    AuthorizerTokens,
    ComponentAccessToken,
    Permission,
    PreAuthCode,
)
from .storage import (
    InMemoryTokenStorage,
    LockTimeoutError,
    RedisLock,
    RedisTokenStorage,
    StoredToken,
    TokenStorage,
    TokenStorageError,
)

__all__ = [
    "AuthClient",
    "AuthorizationCode",
    "AuthorizerTokens",
    "ComponentAccessToken",
    "InMemoryTokenStorage",
    "LockTimeoutError",
    "Permission",
    "PreAuthCode",
    "RedisLock",
    "RedisTokenStorage",
    "RefreshFunction",
    "StoredToken",
    "TokenManager",
    "TokenStorage",
    "TokenStorageError",
]
