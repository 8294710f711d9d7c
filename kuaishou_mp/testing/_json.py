"""JSON codec for the fake: orjson when importable (benchmarks push 10^5 requests), else stdlib."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads"]

dumps: Callable[[Any], bytes]
loads: Callable[[bytes | str], Any]

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only without the speed extra

    def _std_dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    dumps = _std_dumps
    loads = json.loads
else:
    dumps = orjson.dumps
    loads = orjson.loads
