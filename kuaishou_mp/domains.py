"""Domain reconciliation: compute the fewest platform calls that bring domain lists to a goal.

:func:`plan_reconcile` is pure: from the current configuration, the desired one and a
:class:`ReconcileMode` it builds a :class:`ReconcilePlan` (what changes, the calls to make, the
state expected afterwards). :func:`reconcile` reads the current state through a
:class:`DomainCaller` (the client), plans, and applies the plan unless asked for a dry run.

Host names are case-insensitive, so domains are compared case-insensitively and duplicates
collapse; deletions use the platform's own spelling so the platform recognises them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeAlias, TypeVar

import attrs

from kuaishou_mp.errors import InvalidInputError
from kuaishou_mp.models import Authorizer, DomainAction, ServerDomains, WebviewDomains

__all__ = [
    "DomainCall",
    "DomainCaller",
    "DomainChanges",
    "ReconcileMode",
    "ReconcilePlan",
    "ReconcileResult",
    "plan_reconcile",
    "reconcile",
]

D = TypeVar("D", ServerDomains, WebviewDomains)

DomainCall: TypeAlias = tuple[DomainAction, dict[str, tuple[str, ...]]]
"""One platform call of a plan: the action and the lists to send (list name -> domains)."""


class ReconcileMode(str, enum.Enum):
    """How :func:`plan_reconcile` treats the desired domains."""

    EXACT = "exact"
    """Make every list exactly the desired one (lists left empty in ``desired`` are cleared)."""
    ENSURE = "ensure"
    """Make sure the desired domains are present; leave the others alone."""
    REMOVE = "remove"
    """Make sure the desired domains are absent; leave the others alone."""

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class DomainChanges:
    """What a plan adds and deletes, per list name; lists without changes are left out.

    Attributes:
        add: List name -> domains to add (in the desired spelling and order).
        delete: List name -> domains to delete (in the platform's spelling).
    """

    add: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    delete: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to add or delete."""
        return not self.add and not self.delete


@attrs.frozen
class ReconcilePlan(Generic[D]):
    """The outcome of :func:`plan_reconcile`.

    Attributes:
        mode: The mode planned for.
        before: The current configuration, as the platform spelled it.
        desired: The goal, as given.
        changes: What differs, per list.
        expected: The configuration once :meth:`calls` are applied (``before`` when there is
            nothing to do).
    """

    mode: ReconcileMode
    before: D
    desired: D
    changes: DomainChanges
    expected: D

    def calls(self) -> list[DomainCall]:
        """The platform calls that carry out the plan, in order, as ``(action, lists)`` pairs.

        None when there are no changes. ``exact`` makes one ``set`` with every list of the model
        (so lists that must become empty are cleared); ``ensure`` one ``add`` and ``remove`` one
        ``delete``, each with only the lists that change.
        """
        if self.changes.empty:
            return []
        if self.mode is ReconcileMode.EXACT:
            lists = {name: getattr(self.expected, name) for name in self.expected.LISTS}
            return [(DomainAction.SET, lists)]
        if self.mode is ReconcileMode.ENSURE:
            return [(DomainAction.ADD, dict(self.changes.add))]
        return [(DomainAction.DELETE, dict(self.changes.delete))]


@attrs.frozen
class ReconcileResult(Generic[D]):
    """The outcome of :func:`reconcile` for one mini-program.

    Attributes:
        authorizer: The authorizer as given.
        plan: The plan that was computed (and applied unless ``dry_run``).
        before: The configuration read before any change.
        after: The configuration the last call returned, ``before`` when nothing needed doing,
            ``None`` for a dry run.
        dry_run: Whether only the read was made.
        applied_calls: How many changing calls were made (0 or 1).
    """

    authorizer: Authorizer | str
    plan: ReconcilePlan[D]
    before: D
    after: D | None
    dry_run: bool
    applied_calls: int

    @property
    def changed(self) -> bool:
        """Whether a changing call was made (always ``False`` for a dry run)."""
        return self.applied_calls > 0


class DomainCaller(Protocol):
    """What :func:`reconcile` needs: the client's two domain methods.

    :class:`~kuaishou_mp.Client` satisfies it; so does any test double with these methods.
    """

    async def server_domain(
        self,
        authorizer: Authorizer | str,
        action: DomainAction | str,
        *,
        request: Sequence[str] | None = None,
        socket: Sequence[str] | None = None,
        upload_file: Sequence[str] | None = None,
        download_file: Sequence[str] | None = None,
        udp: Sequence[str] | None = None,
    ) -> ServerDomains:
        """Apply ``action`` to the server domain lists given; return the resulting lists."""
        ...

    async def webview_domain(
        self,
        authorizer: Authorizer | str,
        action: DomainAction | str,
        *,
        webview: Sequence[str] | None = None,
    ) -> WebviewDomains:
        """Apply ``action`` to the webview domains; return the resulting list."""
        ...


def _parse_mode(mode: ReconcileMode | str) -> ReconcileMode:
    if isinstance(mode, ReconcileMode):
        return mode
    if isinstance(mode, str):
        try:
            return ReconcileMode(mode.lower())
        except ValueError:
            pass
    choices = ", ".join(m.value for m in ReconcileMode)
    raise InvalidInputError(f"unknown reconcile mode {mode!r}; expected one of {choices}")


def _unique(domains: Iterable[str]) -> tuple[str, ...]:
    """Drop case-insensitive duplicates, keeping the first spelling and the order."""
    seen: set[str] = set()
    out: list[str] = []
    for domain in domains:
        key = domain.lower()
        if key not in seen:
            seen.add(key)
            out.append(domain)
    return tuple(out)


def plan_reconcile(current: D, desired: D, mode: ReconcileMode | str) -> ReconcilePlan[D]:
    """Compute the changes and calls that take ``current`` to ``desired`` under ``mode``.

    Pure: makes no calls. Domains match case-insensitively and duplicates collapse. For
    ``exact`` the desired order is kept, and lists that already hold the same domains (in any
    order or case) count as unchanged.

    Args:
        current: The configuration the platform reports.
        desired: The goal; the same model type as ``current``.
        mode: ``exact``, ``ensure`` or ``remove`` (a :class:`ReconcileMode` or its value).

    Returns:
        The :class:`ReconcilePlan`.

    Raises:
        InvalidInputError: ``current`` and ``desired`` are not the same domain model, or the
            mode is unknown.
    """
    mode = _parse_mode(mode)
    if type(current) is not type(desired) or not isinstance(
        current, (ServerDomains, WebviewDomains)
    ):
        raise InvalidInputError(
            "current and desired must both be ServerDomains or both WebviewDomains, got "
            f"{type(current).__name__} and {type(desired).__name__}"
        )
    add: dict[str, tuple[str, ...]] = {}
    delete: dict[str, tuple[str, ...]] = {}
    after: dict[str, tuple[str, ...]] = {}
    for name in current.LISTS:
        have: tuple[str, ...] = getattr(current, name)
        want = _unique(getattr(desired, name))
        have_keys = {d.lower() for d in have}
        want_keys = {d.lower() for d in want}
        to_add: tuple[str, ...] = ()
        to_delete: tuple[str, ...] = ()
        if mode is not ReconcileMode.REMOVE:
            to_add = tuple(d for d in want if d.lower() not in have_keys)
        if mode is ReconcileMode.EXACT:
            # dict.fromkeys: the platform may hold two spellings; each needs deleting.
            to_delete = tuple(dict.fromkeys(d for d in have if d.lower() not in want_keys))
            after[name] = want
        elif mode is ReconcileMode.ENSURE:
            after[name] = have + to_add
        else:
            to_delete = tuple(dict.fromkeys(d for d in have if d.lower() in want_keys))
            after[name] = tuple(d for d in have if d.lower() not in want_keys)
        if to_add:
            add[name] = to_add
        if to_delete:
            delete[name] = to_delete
    changes = DomainChanges(add=add, delete=delete)
    expected = current if changes.empty else attrs.evolve(current, **after)
    return ReconcilePlan(
        mode=mode, before=current, desired=desired, changes=changes, expected=expected
    )


async def _domain_call(
    caller: DomainCaller,
    authorizer: Authorizer | str,
    model: D,
    action: DomainAction,
    lists: Mapping[str, tuple[str, ...]],
) -> D:
    if isinstance(model, ServerDomains):
        return await caller.server_domain(authorizer, action, **lists)
    return await caller.webview_domain(authorizer, action, **lists)


async def reconcile(
    caller: DomainCaller,
    authorizer: Authorizer | str,
    desired: D,
    mode: ReconcileMode | str = ReconcileMode.ENSURE,
    *,
    dry_run: bool = False,
) -> ReconcileResult[D]:
    """Bring one mini-program's server or webview domains to ``desired`` with the fewest calls.

    Reads the current lists (``get``), plans with :func:`plan_reconcile`, then, unless
    ``dry_run``, makes the plan's calls in order (at most one). Whether server or webview
    domains are reconciled follows the type of ``desired``.

    Args:
        caller: The client (anything with ``server_domain`` and ``webview_domain``).
        authorizer: The mini-program: an :class:`~kuaishou_mp.models.Authorizer` or an app id.
        desired: A :class:`~kuaishou_mp.models.ServerDomains` or
            :class:`~kuaishou_mp.models.WebviewDomains`.
        mode: ``ensure`` (default), ``exact`` or ``remove``.
        dry_run: Only read and plan; change nothing.

    Returns:
        The :class:`ReconcileResult`.

    Raises:
        InvalidInputError: ``desired`` is not a domain model or ``mode`` is unknown (before any
            call).
        KuaishouError: Whatever the caller raises for the read or the change.
    """
    mode = _parse_mode(mode)
    if not isinstance(desired, (ServerDomains, WebviewDomains)):
        raise InvalidInputError(
            f"desired must be ServerDomains or WebviewDomains, got {type(desired).__name__}"
        )
    before = await _domain_call(caller, authorizer, desired, DomainAction.GET, {})
    plan = plan_reconcile(before, desired, mode)
    after: D | None = None
    applied = 0
    if not dry_run:
        after = before
        for action, lists in plan.calls():
            after = await _domain_call(caller, authorizer, desired, action, lists)
            applied += 1
    return ReconcileResult(
        authorizer=authorizer,
        plan=plan,
        before=before,
        after=after,
        dry_run=dry_run,
        applied_calls=applied,
    )
