"""Domain reconciliation: pure plans (with property tests) and the thin async apply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kuaishou_mp.domains import (
    DomainCaller,
    DomainChanges,
    ReconcileMode,
    ReconcilePlan,
    plan_reconcile,
    reconcile,
)
from kuaishou_mp.errors import DomainNotFoundError, InvalidInputError, ServerError
from kuaishou_mp.models import Authorizer, DomainAction, ServerDomains, WebviewDomains

D = TypeVar("D", ServerDomains, WebviewDomains)

ADD, DELETE, SET, GET = DomainAction.ADD, DomainAction.DELETE, DomainAction.SET, DomainAction.GET


def simulate(state: D, action: DomainAction, lists: Mapping[str, Sequence[str]]) -> D:
    """The platform as we model it: add appends what is missing, delete refuses an absent domain
    (and changes nothing then), set replaces the lists it is given. Matching is exact."""
    new: dict[str, tuple[str, ...]] = {}
    for name, domains in lists.items():
        have = list(getattr(state, name))
        if action is ADD:
            have += [d for d in dict.fromkeys(domains) if d not in have]
        elif action is DELETE:
            for d in domains:
                if d not in have:
                    raise DomainNotFoundError(f"{d} is not configured", code=403106)
                have = [x for x in have if x != d]
        else:
            assert action is SET
            have = list(domains)
        new[name] = tuple(have)
    return attrs.evolve(state, **new)


def apply_calls(plan: ReconcilePlan[D]) -> D:
    state = plan.before
    for action, lists in plan.calls():
        state = simulate(state, action, lists)
    return state


class FakePlatform:
    """An in-memory :class:`DomainCaller` for one mini-program, logging every call."""

    def __init__(
        self, server: ServerDomains | None = None, webview: WebviewDomains | None = None
    ) -> None:
        self.server = server or ServerDomains()
        self.webview = webview or WebviewDomains()
        self.calls: list[tuple[str, DomainAction, dict[str, tuple[str, ...]]]] = []
        self.fail_on: DomainAction | None = None

    def _log(
        self, kind: str, action: DomainAction | str, lists: Mapping[str, Sequence[str] | None]
    ) -> tuple[DomainAction, dict[str, tuple[str, ...]]]:
        act = DomainAction(action)
        sent = {k: tuple(v) for k, v in lists.items() if v is not None}
        self.calls.append((kind, act, sent))
        if act is self.fail_on:
            raise ServerError("platform failure", code=100200500)
        return act, sent

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
        lists = {
            "request": request,
            "socket": socket,
            "upload_file": upload_file,
            "download_file": download_file,
            "udp": udp,
        }
        act, sent = self._log("server", action, lists)
        if act is not GET:
            self.server = simulate(self.server, act, sent)
        return self.server

    async def webview_domain(
        self,
        authorizer: Authorizer | str,
        action: DomainAction | str,
        *,
        webview: Sequence[str] | None = None,
    ) -> WebviewDomains:
        act, sent = self._log("webview", action, {"webview": webview})
        if act is not GET:
            self.webview = simulate(self.webview, act, sent)
        return self.webview


def test_fake_platform_is_a_domain_caller() -> None:
    caller: DomainCaller = FakePlatform()  # mypy checks the protocol here
    assert caller is not None


# -- plans --------------------------------------------------------------------------------------


def test_ensure_adds_only_what_is_missing_case_insensitively() -> None:
    before = ServerDomains(request=("a.com", "B.com"), socket=("ws.com",))
    desired = ServerDomains(request=("b.com", "c.com", "C.com"), udp=("u.com",))
    plan = plan_reconcile(before, desired, ReconcileMode.ENSURE)

    assert plan.changes == DomainChanges(add={"request": ("c.com",), "udp": ("u.com",)}, delete={})
    assert plan.calls() == [(ADD, {"request": ("c.com",), "udp": ("u.com",)})]
    assert plan.expected == ServerDomains(
        request=("a.com", "B.com", "c.com"), socket=("ws.com",), udp=("u.com",)
    )
    assert (plan.mode, plan.before, plan.desired) == (ReconcileMode.ENSURE, before, desired)


def test_remove_deletes_in_the_platform_spelling_and_ignores_absent_ones() -> None:
    before = ServerDomains(request=("A.com", "b.com"), download_file=("d.com",))
    desired = ServerDomains(request=("a.com", "zzz.com"), socket=("b.com",))
    plan = plan_reconcile(before, desired, "remove")

    assert plan.changes == DomainChanges(add={}, delete={"request": ("A.com",)})
    assert plan.calls() == [(DELETE, {"request": ("A.com",)})]
    assert plan.expected == ServerDomains(request=("b.com",), download_file=("d.com",))


def test_exact_makes_one_set_with_every_list_in_the_desired_order() -> None:
    before = ServerDomains(request=("a.com", "b.com"), socket=("s.com",), udp=("u.com",))
    desired = ServerDomains(request=("c.com", "A.com", "c.com"), udp=("U.com",))
    plan = plan_reconcile(before, desired, ReconcileMode.EXACT)

    assert plan.changes == DomainChanges(
        add={"request": ("c.com",)}, delete={"request": ("b.com",), "socket": ("s.com",)}
    )
    expected_lists = {
        "request": ("c.com", "A.com"),
        "socket": (),
        "upload_file": (),
        "download_file": (),
        "udp": ("U.com",),
    }
    assert plan.calls() == [(SET, expected_lists)]
    assert plan.expected == ServerDomains(**expected_lists)


def test_exact_ignores_differences_of_case_order_and_duplicates() -> None:
    before = ServerDomains(request=("A.com", "b.com", "b.com"))
    desired = ServerDomains(request=("b.com", "a.com"))
    plan = plan_reconcile(before, desired, ReconcileMode.EXACT)
    assert plan.changes.empty
    assert plan.calls() == []
    assert plan.expected is before


@pytest.mark.parametrize("mode", list(ReconcileMode))
def test_nothing_to_do_means_no_calls(mode: ReconcileMode) -> None:
    before = ServerDomains(request=("a.com",), socket=("s.com",))
    desired = before if mode is not ReconcileMode.REMOVE else ServerDomains(udp=("x.com",))
    plan = plan_reconcile(before, desired, mode)
    assert plan.changes.empty
    assert plan.calls() == []
    assert plan.expected == before


@pytest.mark.parametrize(
    ("mode", "action", "lists", "expected"),
    [
        ("ensure", ADD, {"webview": ("new.com",)}, ("Old.com", "keep.com", "new.com")),
        ("remove", DELETE, {"webview": ("Old.com",)}, ("keep.com",)),
        ("exact", SET, {"webview": ("old.com", "new.com")}, ("old.com", "new.com")),
    ],
)
def test_webview_plans(
    mode: str, action: DomainAction, lists: dict[str, tuple[str, ...]], expected: tuple[str, ...]
) -> None:
    before = WebviewDomains(webview=("Old.com", "keep.com"))
    desired = WebviewDomains(webview=("old.com", "new.com"))
    plan = plan_reconcile(before, desired, mode)
    assert plan.calls() == [(action, lists)]
    assert plan.expected == WebviewDomains(webview=expected)


def test_mode_parsing() -> None:
    before = WebviewDomains(webview=("a.com",))
    assert plan_reconcile(before, before, "EXACT").mode is ReconcileMode.EXACT
    assert plan_reconcile(before, before, "ensure").mode is ReconcileMode.ENSURE
    assert str(ReconcileMode.REMOVE) == "remove"
    with pytest.raises(InvalidInputError, match="mode"):
        plan_reconcile(before, before, "replace")
    with pytest.raises(InvalidInputError, match="mode"):
        plan_reconcile(before, before, 3)  # type: ignore[arg-type]


def test_models_must_match() -> None:
    with pytest.raises(InvalidInputError, match="both"):
        plan_reconcile(ServerDomains(), WebviewDomains(), "exact")  # type: ignore[type-var]
    with pytest.raises(ValueError, match="both"):
        plan_reconcile({}, {}, "exact")  # type: ignore[type-var]


# -- properties ---------------------------------------------------------------------------------

_domain = st.sampled_from(
    ["a.com", "A.com", "b.com", "B.COM", "c.com", "api.example.org", "API.Example.org"]
)
_list = st.lists(_domain, max_size=6).map(tuple)
_server = st.builds(
    ServerDomains,
    request=_list,
    socket=_list,
    upload_file=_list,
    download_file=_list,
    udp=_list,
)
_webview = st.builds(WebviewDomains, webview=_list)


def _keys(domains: Sequence[str]) -> set[str]:
    return {d.lower() for d in domains}


def check_plan_properties(before: D, desired: D, mode: ReconcileMode) -> None:
    plan = plan_reconcile(before, desired, mode)
    calls = plan.calls()

    assert len(calls) <= 1
    assert (calls == []) == plan.changes.empty
    assert apply_calls(plan) == plan.expected  # also: no delete of an absent domain
    assert plan_reconcile(plan.expected, desired, mode).changes.empty  # idempotent

    for name in type(before).LISTS:
        want = _keys(getattr(desired, name))
        got = _keys(getattr(plan.expected, name))
        if mode is ReconcileMode.ENSURE:
            assert got == want | _keys(getattr(before, name))
        elif mode is ReconcileMode.REMOVE:
            assert got == _keys(getattr(before, name)) - want
        else:
            assert got == want
    if calls:
        action, lists = calls[0]
        assert action is {"exact": SET, "ensure": ADD, "remove": DELETE}[mode.value]
        if action is SET:
            assert set(lists) == set(type(before).LISTS)
            for domains in lists.values():
                assert len(_keys(domains)) == len(domains)  # duplicates collapsed
        else:
            assert lists
            assert all(lists.values())  # only the lists that change


@given(before=_server, desired=_server, mode=st.sampled_from(ReconcileMode))
def test_server_plan_properties(
    before: ServerDomains, desired: ServerDomains, mode: ReconcileMode
) -> None:
    check_plan_properties(before, desired, mode)


@given(before=_webview, desired=_webview, mode=st.sampled_from(ReconcileMode))
def test_webview_plan_properties(
    before: WebviewDomains, desired: WebviewDomains, mode: ReconcileMode
) -> None:
    check_plan_properties(before, desired, mode)


# -- reconcile ----------------------------------------------------------------------------------


async def test_reconcile_ensure_reads_then_makes_one_add() -> None:
    platform = FakePlatform(server=ServerDomains(request=("a.com",)))
    desired = ServerDomains(request=("A.com", "b.com"), socket=("s.com",))
    result = await reconcile(platform, "app1", desired)

    assert platform.calls == [
        ("server", GET, {}),
        ("server", ADD, {"request": ("b.com",), "socket": ("s.com",)}),
    ]
    assert result.after == platform.server == result.plan.expected
    assert result.after == ServerDomains(request=("a.com", "b.com"), socket=("s.com",))
    assert result.before == result.plan.before == ServerDomains(request=("a.com",))
    assert (result.authorizer, result.dry_run, result.applied_calls) == ("app1", False, 1)
    assert result.changed


async def test_reconcile_exact_makes_one_set() -> None:
    platform = FakePlatform(server=ServerDomains(request=("a.com",), udp=("u.com",)))
    desired = ServerDomains(request=("b.com",))
    result = await reconcile(platform, Authorizer("app1", "tok"), desired, ReconcileMode.EXACT)

    assert [(kind, action) for kind, action, _ in platform.calls] == [
        ("server", GET),
        ("server", SET),
    ]
    assert platform.server == desired == result.after
    assert result.applied_calls == 1


async def test_reconcile_remove_with_other_spelling_makes_one_delete() -> None:
    platform = FakePlatform(webview=WebviewDomains(webview=("Shop.example.com", "b.com")))
    result = await reconcile(
        platform, "app1", WebviewDomains(webview=("shop.example.com",)), "remove"
    )
    assert platform.calls[1] == ("webview", DELETE, {"webview": ("Shop.example.com",)})
    assert result.after == WebviewDomains(webview=("b.com",))


async def test_reconcile_with_nothing_to_do_only_reads() -> None:
    platform = FakePlatform(webview=WebviewDomains(webview=("a.com",)))
    result = await reconcile(platform, "app1", WebviewDomains(webview=("zzz.com",)), "remove")
    assert platform.calls == [("webview", GET, {})]
    assert result.after == result.before == WebviewDomains(webview=("a.com",))
    assert result.applied_calls == 0
    assert not result.changed


async def test_dry_run_only_reads() -> None:
    before = ServerDomains(request=("a.com",), socket=("s.com",))
    platform = FakePlatform(server=before)
    result = await reconcile(
        platform, "app1", ServerDomains(request=("b.com",)), "exact", dry_run=True
    )

    assert platform.calls == [("server", GET, {})]
    assert platform.server == before
    assert result.after is None
    assert result.dry_run
    assert not result.changed
    assert result.plan.calls() == [
        (
            SET,
            {
                "request": ("b.com",),
                "socket": (),
                "upload_file": (),
                "download_file": (),
                "udp": (),
            },
        )
    ]


@pytest.mark.parametrize("failing", [GET, ADD])
async def test_platform_errors_propagate(failing: DomainAction) -> None:
    platform = FakePlatform()
    platform.fail_on = failing
    with pytest.raises(ServerError):
        await reconcile(platform, "app1", ServerDomains(request=("a.com",)))
    assert platform.server == ServerDomains()


async def test_bad_arguments_are_refused_before_any_call() -> None:
    platform = FakePlatform()
    with pytest.raises(InvalidInputError, match="desired"):
        await reconcile(platform, "app1", {"request": ["a.com"]})  # type: ignore[type-var]
    with pytest.raises(InvalidInputError, match="mode"):
        await reconcile(platform, "app1", ServerDomains(), "sync")
    assert platform.calls == []
