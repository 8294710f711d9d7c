"""What a capacity run looked like over time, seen through the SDK's public hooks.

:class:`Timeline` buckets attempts (sent, ok, throttled) and the learned component-wide rate
into half-second steps; :func:`svg` draws the learned rate and the ok and throttled answers per
second against the platform's limit, as a self-contained SVG (no plotting library needed).
"""

from __future__ import annotations

import time
from typing import Any

from kuaishou_mp import AttemptEnd, AttemptStart, Hooks

STEP = 0.5


class Timeline(Hooks):
    """Counts per :data:`STEP` seconds, from the attempts the client reports."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.rows: dict[int, dict[str, Any]] = {}

    def _row(self) -> dict[str, Any]:
        i = int((time.monotonic() - self.t0) / STEP)
        row = self.rows.get(i)
        if row is None:
            row = self.rows[i] = {"sent": 0, "ok": 0, "throttled": 0, "learned_rate": None}
        return row

    def on_attempt_start(self, event: AttemptStart) -> None:
        row = self._row()
        row["sent"] += 1
        row["learned_rate"] = event.learned_rate

    def on_attempt_end(self, event: AttemptEnd) -> None:
        row = self._row()
        if event.outcome == "ok":
            row["ok"] += 1
        elif event.outcome == "throttled":
            row["throttled"] += 1

    def series(self) -> list[dict[str, Any]]:
        """One row per step: its start (s), and sent, ok and throttled per second, learned rate."""
        out = []
        rate = None
        for i in range(max(self.rows, default=-1) + 1):
            row = self.rows.get(i, {"sent": 0, "ok": 0, "throttled": 0, "learned_rate": rate})
            rate = row["learned_rate"]
            out.append(
                {
                    "t": round(i * STEP, 2),
                    "sent_per_s": row["sent"] / STEP,
                    "ok_per_s": row["ok"] / STEP,
                    "throttled_per_s": row["throttled"] / STEP,
                    "learned_rate": None if rate is None else round(rate, 1),
                }
            )
        return out


_W, _H, _PAD = 720, 320, 48
_LINES = (
    ("ok_per_s", "#2a7ab9", "ok answers per second"),
    ("throttled_per_s", "#d1495b", "throttled answers per second"),
    ("learned_rate", "#222222", "learned rate (calls/s)"),
)


def svg(series: list[dict[str, Any]], limit: float, title: str) -> str:
    """The run as an SVG line chart, with the platform's limit as a dashed line."""
    t_max = max((r["t"] for r in series), default=1.0) + STEP
    values = [r[k] for r in series for k, _, _ in _LINES if r[k] is not None]
    # Room above the limit; a first burst far above it is clipped at three times the limit.
    y_max = max(limit * 1.4, min(max(values, default=0.0), limit * 3))

    def x(t: float) -> float:
        return _PAD + (_W - 2 * _PAD) * t / t_max

    def y(v: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * min(v, y_max) / y_max

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_PAD}" y="20" font-size="14">{title}</text>',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#888"/>',
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#888"/>',
        f'<line x1="{_PAD}" y1="{y(limit):.1f}" x2="{_W - _PAD}" y2="{y(limit):.1f}" '
        'stroke="#888" stroke-dasharray="6 4"/>',
        f'<text x="{_W - _PAD - 4}" y="{y(limit) - 4:.1f}" text-anchor="end" fill="#555">'
        f"platform limit {limit:g}/s</text>",
    ]
    for tick in range(0, int(t_max) + 1, 5):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{_H - _PAD + 16}" text-anchor="middle">{tick}s</text>'
        )
    for frac in (0.0, 0.5, 1.0):
        v = y_max * frac
        parts.append(f'<text x="{_PAD - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    for n, (key, colour, label) in enumerate(_LINES):
        points = " ".join(
            f"{x(r['t'] + STEP / 2):.1f},{y(r[key]):.1f}" for r in series if r[key] is not None
        )
        if points:
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"/>'
            )
        ly = _PAD + 14 * n
        parts.append(
            f'<line x1="{_PAD + 12}" y1="{ly}" x2="{_PAD + 32}" y2="{ly}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        parts.append(f'<text x="{_PAD + 38}" y="{ly + 4}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
