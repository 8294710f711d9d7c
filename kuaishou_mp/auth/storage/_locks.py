"""Per-key ``asyncio`` locks that live only while someone holds or waits for them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["KeyedLocks"]

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """One ``asyncio.Lock`` per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._entries: dict[K, list[Any]] = {}

    @contextlib.contextmanager
    def hold(self, key: K) -> Iterator[asyncio.Lock]:
        """Use the key's lock within the block (it is dropped when its last user leaves)."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            yield entry[0]
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._entries[key]

    def locked(self, key: K) -> bool:
        """Whether the key's lock is held right now."""
        entry = self._entries.get(key)
        return entry is not None and bool(entry[0].locked())

    def __len__(self) -> int:
        return len(self._entries)
