"""The platform-authorization answers as frozen attrs models.

The OAuth endpoints answer in camelCase (``componentAccessToken``, ``expiresIn``); the models
use the snake_case of those names (``component_access_token``, ``expires_in``), mapped by hooks
registered on the package's one converter (:mod:`kuaishou_mp._convert`), which keeps its rules:
strict types, ``null`` means "not sent", unknown fields are ignored.

Every secret (tokens and codes) is left out of ``repr``.
"""

from __future__ import annotations

from typing import Any

import attrs
from cattrs.gen import make_dict_structure_fn, override

from .._convert import converter, json_type

__all__ = [
    "AuthorizationCode",
    "AuthorizerTokens",
    "ComponentAccessToken",
    "Permission",
    "PreAuthCode",
]


@attrs.frozen
class Permission:
    """One permission an authorizer granted (an item of ``authorizePermission``).

    Args:
        id: The permission's id (the platform does not document its type: an integer or a
            string is kept as sent).
        category: The permission's category.
        description: What the permission allows.
    """

    id: int | str = 0
    category: str = ""
    description: str = ""


@attrs.frozen
class ComponentAccessToken:
    """A component access token (``GET /mp/tp/oauth/access_token``).

    Args:
        component_access_token: The token (a secret; left out of ``repr``).
        expires_in: Seconds it lives (7200). Older tokens stay valid until they expire.
    """

    component_access_token: str = attrs.field(repr=False)
    expires_in: int = 7200


@attrs.frozen
class PreAuthCode:
    """A pre-authorization code (``GET /mp/tp/oauth/pre_auth_code``).

    Args:
        pre_auth_code: The code (a secret; left out of ``repr``).
        expires_in: Seconds it lives (600).
    """

    pre_auth_code: str = attrs.field(repr=False)
    expires_in: int = 600


@attrs.frozen
class AuthorizerTokens:
    """An authorizer's tokens (``GET /mp/tp/oauth/authorizer_access_token``).

    A refresh function given to :class:`~kuaishou_mp.auth.TokenManager` returns one of these
    too; it need only set ``authorizer_access_token`` and ``expires_in``.

    Args:
        authorizer_access_token: The access token (a secret; left out of ``repr``).
        expires_in: Seconds the access token lives (7200).
        authorizer_refresh_token: The refresh token (a secret; left out of ``repr``), or
            ``""`` when none was sent (the stored one is then kept).
        refresh_expires_in: Seconds the refresh token lives (2592000, 30 days).
        authorizer_app_id: The authorized mini-program's app id.
        authorize_permission: The permissions the authorizer granted.
    """

    authorizer_access_token: str = attrs.field(repr=False)
    expires_in: int = 7200
    authorizer_refresh_token: str = attrs.field(default="", repr=False)
    refresh_expires_in: int = 2592000
    authorizer_app_id: str = ""
    authorize_permission: tuple[Permission, ...] = ()


@attrs.frozen
class AuthorizationCode:
    """An authorization code recovered for an authorized app (``re_authorization_code``).

    Args:
        authorization_code: The code (a secret; left out of ``repr``).
        expires_in: Seconds it lives (3600).
    """

    authorization_code: str = attrs.field(repr=False)
    expires_in: int = 3600


def _int_or_str(value: Any, _: type) -> int | str:
    if type(value) is int or type(value) is str:
        return value
    raise TypeError(f"expected an integer or a string, got {json_type(value)}")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _register(cls: type[Any], **hooks: Any) -> None:
    """Structure ``cls`` from camelCase keys, with the converter's object rules."""
    overrides: dict[str, Any] = {
        field.name: override(rename=_camel(field.name), **hooks.get(field.name, {}))
        for field in attrs.fields(cls)
    }
    inner = make_dict_structure_fn(cls, converter, **overrides)

    def structure(value: Any, target: type) -> Any:
        # The same rules as _convert's hook for the basic-info models: an object is required,
        # and a null field counts as not sent, so its default applies.
        if type(value) is not dict:
            raise TypeError(f"expected an object, got {json_type(value)}")
        if None in value.values():
            value = {k: v for k, v in value.items() if v is not None}
        return inner(value, target)

    converter.register_structure_hook(cls, structure)


# Permission first: AuthorizerTokens' hook resolves the tuple's item hook when it is built.
_register(Permission, id={"struct_hook": _int_or_str})
_register(ComponentAccessToken)
_register(PreAuthCode)
_register(AuthorizerTokens)
_register(AuthorizationCode)
