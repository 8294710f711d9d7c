"""JSON encode/decode: orjson when the ``speed`` extra is installed, else the standard library."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - exercised in environments without the speed extra
    _dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(value: Any) -> bytes:
        """Serialise ``value`` to compact UTF-8 JSON bytes."""
        return _dumps(value).encode()

    loads: Callable[[bytes], Any] = json.loads
else:
    dumps = orjson.dumps  # type: ignore[assignment]
    loads: Callable[[bytes], Any] = orjson.loads  # type: ignore[no-redef]
