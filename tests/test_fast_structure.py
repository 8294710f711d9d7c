"""The structuring fast path returns exactly what the converter returns, or steps aside.

For any platform-shaped document, :mod:`kuaishou_mp._fast_structure` either builds the same
model as the cattrs converter (same values and the same types: an enum member, not a bare int;
a tuple, not a list) or raises ``NotFast``, and then the converter decides. It never accepts a
document the converter refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_properties import PROPERTY, WIRE_FIELDS

from kuaishou_mp import (
    AppInfo,
    AppStatus,
    AuditInfo,
    AuditStatus,
    ServerDomains,
    SubjectType,
    WebviewDomains,
)
from kuaishou_mp._convert import _fast, converter, structure
from kuaishou_mp._fast_structure import NotFast, _Compiler, compile_fast
from kuaishou_mp.errors import ResponseValidationError

MODELS = {"app_info": AppInfo, "server_domain": ServerDomains, "webview_domain": WebviewDomains}


def assert_identical(a: Any, b: Any, path: str = "$") -> None:
    """Equal values of the very same types, all the way down."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            assert_identical(getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def converter_outcome(doc: dict[str, Any], cls: type[Any]) -> Any:
    try:
        return converter.get_structure_hook(cls)(doc, cls)
    except Exception as exc:  # cattrs' validation errors, TypeError, ValueError
        return exc


@PROPERTY
@given(data=st.data(), name=st.sampled_from(sorted(MODELS)))
def test_the_fast_path_agrees_with_the_converter(data: st.DataObject, name: str) -> None:
    cls = MODELS[name]
    doc = data.draw(st.fixed_dictionaries({}, optional=WIRE_FIELDS[name]))
    fast = _fast[cls]
    assert fast is not None
    expected = converter_outcome(doc, cls)
    try:
        got = fast(doc)
    except NotFast:
        return
    assert not isinstance(expected, Exception), f"fast path accepted what cattrs refused: {doc}"
    assert_identical(got, expected)


def usual(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A well-typed value, sometimes ``null``: what the platform normally sends."""
    return st.one_of(strategy, strategy, strategy, st.none())


def known(cls: type[IntEnum]) -> st.SearchStrategy[int]:
    return st.sampled_from([member.value for member in cls])


usual_audit = st.fixed_dictionaries(
    {},
    optional={
        "new_name": usual(st.text(max_size=10)),
        "remaining_times": usual(st.integers(0, 10)),
        "status": usual(known(AuditStatus)),
        "reason": usual(st.text(max_size=10)),
    },
)
usual_category = st.fixed_dictionaries(
    {},
    optional={
        "category_id": usual(st.text(max_size=8)),
        "category_name": usual(st.text(max_size=8)),
        "status": usual(known(AuditStatus)),
        "reason": usual(st.text(max_size=8)),
    },
)
usual_domains = usual(st.lists(st.text(max_size=12), max_size=4))
USUAL_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "app_info": {
        "status": usual(known(AppStatus)),
        "app_name": usual(st.text(max_size=10)),
        "name_audit": usual(usual_audit),
        "app_avatar": usual(st.text(max_size=10)),
        "avatar_audit": usual(usual_audit),
        "app_intro": usual(st.text(max_size=10)),
        "intro_audit": usual(usual_audit),
        "subject": usual(
            st.fixed_dictionaries(
                {}, optional={"name": usual(st.text()), "type": usual(known(SubjectType))}
            )
        ),
        "app_category": usual(st.lists(usual_category, max_size=4)),
    },
    "server_domain": dict.fromkeys(ServerDomains.LISTS, usual_domains),
    "webview_domain": {"webview": usual_domains},
}


@PROPERTY
@given(data=st.data(), name=st.sampled_from(sorted(MODELS)))
def test_a_usual_document_takes_the_fast_path_to_the_same_model(
    data: st.DataObject, name: str
) -> None:
    # The property above mostly draws documents the fast path refuses; this one draws the
    # usual kind, which it must accept, and build exactly as the converter would.
    cls = MODELS[name]
    doc = data.draw(st.fixed_dictionaries({}, optional=USUAL_FIELDS[name]))
    fast = _fast[cls]
    assert fast is not None
    assert_identical(fast(doc), converter_outcome(doc, cls))


WELL_FORMED: dict[str, Any] = {
    "status": 2,
    "app_name": "小程序",
    "name_audit": {"new_name": "新", "remaining_times": 2, "status": 0, "reason": ""},
    "app_avatar": "https://a.example.com/a.png",
    "avatar_audit": None,
    "app_intro": "intro",
    "subject": {"name": "公司", "type": 1},
    "app_category": [
        {"category_id": "1,10", "category_name": "a-b", "status": 1},
        {"category_id": "2", "category_name": "c", "status": 2, "reason": "why"},
    ],
    "unknown_field": [1, 2, 3],
}


def test_a_well_formed_answer_takes_the_fast_path() -> None:
    fast = _fast[AppInfo]
    assert fast is not None
    info = fast(WELL_FORMED)
    assert info.status is AppStatus.ONLINE
    assert info.name_audit == AuditInfo("新", 2, AuditStatus.IN_REVIEW, "")
    assert info.avatar_audit is None
    assert info.intro_audit is None
    assert info.app_category[0].id_path == ("1", "10")
    assert [c.reason for c in info.app_category] == ["", "why"]
    assert_identical(info, converter_outcome(WELL_FORMED, AppInfo))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        info.app_name = "x"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", 9),  # an enum value added later: the converter keeps it as a pseudo-member
        ("status", 2.0),  # an integral float: the converter accepts it
        ("app_name", 7),  # a wrong type: the converter names the field
        ("app_category", [None]),  # null inside a list: the converter refuses it
    ],
)
def test_anything_unusual_falls_back_to_the_converter(field: str, value: Any) -> None:
    fast = _fast[AppInfo]
    assert fast is not None
    with pytest.raises(NotFast):
        fast({**WELL_FORMED, field: value})


def test_structure_gives_the_converter_verdict_after_a_fallback() -> None:
    info = structure({**WELL_FORMED, "status": 9}, AppInfo, endpoint=None, app_id=None)
    assert info.status is not None
    assert int(info.status) == 9
    assert not info.status.is_known


@attrs.frozen
class _WithPostInit:
    name: str = ""

    def __attrs_post_init__(self) -> None:
        pass


@attrs.frozen
class _OtherDefault:
    name: str = "unnamed"  # null gives "", missing gives this: not one branch


@attrs.frozen
class _Unsupported:
    when: float = 0.0


@pytest.mark.parametrize("cls", [_WithPostInit, _OtherDefault, _Unsupported])
def test_classes_it_cannot_prove_equal_get_no_fast_path(cls: type[Any]) -> None:
    assert compile_fast(cls) is None


def _lowered(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(name.lower() for name in names)


@attrs.frozen
class _Converted:
    names: tuple[str, ...] = attrs.field(default=(), converter=_lowered)


def test_a_class_with_converters_is_built_through_its_init() -> None:
    fast = compile_fast(_Converted)
    assert fast is not None
    # Setting the slot directly would keep "A"; only the class's __init__ lowers it.
    assert fast({"names": ["A", "b"]}) == _Converted(("a", "b"))


def _one_word(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if " " in value:
        raise ValueError(f"{attribute.name} must be one word")


@attrs.frozen
class _Validated:
    word: str = attrs.field(default="", validator=_one_word)


@attrs.frozen
class _Outer:
    inner: _Validated | None = None


def test_a_model_that_refuses_a_value_leaves_the_verdict_to_the_converter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = compile_fast(_Outer)
    assert fast is not None
    assert fast({"inner": {"word": "ok"}}) == _Outer(_Validated("ok"))
    monkeypatch.setitem(_fast, _Outer, fast)
    # The validator raises inside the fast path; structure() must still give its typed error.
    with pytest.raises(ResponseValidationError, match="does not fit _Outer") as info:
        structure({"inner": {"word": "two words"}}, _Outer, endpoint=None, app_id=None)
    assert any("inner" in error for error in info.value.errors)


def test_each_compiled_model_keeps_its_own_names() -> None:
    # Generated names (o_cls, o_set0, ...) repeat between models; one compiler, two models.
    compiler = _Compiler()
    audit = compiler.compile(AuditInfo)
    domains = compiler.compile(WebviewDomains)
    assert audit is not None
    assert domains is not None
    assert type(audit({"new_name": "n"})) is AuditInfo
    assert domains({"webview": ["a.example.com"]}) == WebviewDomains(["a.example.com"])
