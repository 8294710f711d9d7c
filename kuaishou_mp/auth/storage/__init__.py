"""Where the token manager keeps tokens, and how it takes turns: a small protocol, two backends.

:class:`InMemoryTokenStorage` suits one process. :class:`RedisTokenStorage` shares tokens and
locks between every process and machine of your application (extra ``kuaishou_mp[redis]``).

Every method takes the component app id, so keys are namespaced by it: one storage can serve
several third-party applications.
"""

from __future__ import annotations

# KeyedLocks is not in __all__ (it never was) but the token manager imports it from here.
from ._locks import KeyedLocks as KeyedLocks
from ._memory import InMemoryTokenStorage
from ._protocol import LockTimeoutError, StoredToken, TokenStorage, TokenStorageError
from ._redis import RedisLock, RedisTokenStorage

__all__ = [
    "InMemoryTokenStorage",
    "LockTimeoutError",
    "RedisLock",
    "RedisTokenStorage",
    "StoredToken",
    "TokenStorage",
    "TokenStorageError",
]
