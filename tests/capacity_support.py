"""Helpers of the capacity tests: authorizers of a fake, and a hook that logs the circuit."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kuaishou_mp import (
    Authorizer,
    CircuitChange,
    Hooks,
)
from kuaishou_mp.testing import FakeKuaishou

if TYPE_CHECKING:
    pass


def authorizers(fake: FakeKuaishou, n: int) -> list[Authorizer]:
    return [Authorizer(a.app_id, a.access_token) for a in fake.add_authorizers(n)]


class CircuitLog(Hooks):
    """Records every circuit change; ``then`` runs after each."""

    def __init__(self, then: Callable[[CircuitChange], None] | None = None) -> None:
        self.changes: list[tuple[str, str]] = []
        self.then = then

    def on_circuit_change(self, event: CircuitChange) -> None:
        self.changes.append((event.previous, event.state))
        if self.then is not None:
            self.then(event)
