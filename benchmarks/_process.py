"""Run a benchmark's fake platform in a child process and read back what it served."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def fake_process(module: str, *args: str) -> Iterator[tuple[str, Any, dict[str, int]]]:
    """Start ``python -m module --serve --state FILE *args``; yield its URL, the state it wrote
    and a dict that is filled with its final counters once it has stopped.

    The child prints ``READY <base_url>`` once listening, stops when its stdin closes and prints
    its counters as the last JSON line.
    """
    with tempfile.TemporaryDirectory() as tmp:
        state_path = Path(tmp) / "state.json"
        argv = [sys.executable, "-m", module, "--serve", "--state", str(state_path), *args]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdin is not None
        assert proc.stdout is not None
        counters: dict[str, int] = {}
        try:
            line = proc.stdout.readline()
            if not line.startswith("READY "):
                raise RuntimeError(f"fake did not start: {line!r}")
            yield line.split()[1], json.loads(state_path.read_text()), counters
        finally:
            proc.stdin.close()
            out = proc.stdout.read()
            proc.wait(timeout=60)
            with contextlib.suppress(ValueError, IndexError):
                counters.update(json.loads(out.strip().splitlines()[-1]))
