"""One JSON line per authorizer: the shape every batch command writes."""

from __future__ import annotations

from typing import Any

from .._convert import unstructure
from .._json import dumps
from .._scrub import scrub
from ..bulk import BulkResult
from ..domains import ReconcileResult
from ..errors import APIError, KuaishouError
from ..models import Authorizer

__all__ = ["error_object", "reconcile_object", "result_line"]


def error_object(error: KuaishouError, token: str | None) -> dict[str, Any]:
    """``{"type", "code", "message"}`` for a failed call; ``code`` is ``None`` unless an APIError.

    The SDK keeps tokens out of its messages; the platform's own ``error_msg`` is scrubbed of
    this authorizer's token all the same, in case the platform ever echoes it.
    """
    return {
        "type": type(error).__name__,
        "code": error.code if isinstance(error, APIError) else None,
        "message": scrub(error.message, (token,)),
    }


def reconcile_object(result: ReconcileResult[Any]) -> dict[str, Any]:
    """A reconciliation as JSON: the plan (changes, the calls it makes) and the states."""
    plan = result.plan
    return {
        "mode": plan.mode.value,
        "dry_run": result.dry_run,
        "changed": result.changed,
        "changes": {"add": dict(plan.changes.add), "delete": dict(plan.changes.delete)},
        # Each call as the body the platform receives, so a dry run shows exactly what would go.
        "calls": [{"action": action.value, **lists} for action, lists in plan.calls()],
        "before": unstructure(result.before),
        "expected": unstructure(plan.expected),
        "after": None if result.after is None else unstructure(result.after),
    }


def result_line(result: BulkResult[Any]) -> bytes:
    """The output line for one bulk result (without the newline). Never holds a token."""
    authorizer = result.authorizer
    app_id = result.app_id
    if result.error is not None:
        token = authorizer.access_token if isinstance(authorizer, Authorizer) else None
        doc = {"app_id": app_id, "ok": False, "error": error_object(result.error, token)}
    else:
        value = result.value
        shaped = (
            reconcile_object(value) if isinstance(value, ReconcileResult) else unstructure(value)
        )
        doc = {"app_id": app_id, "ok": True, "result": shaped}
    data: bytes = dumps(doc)
    return data
