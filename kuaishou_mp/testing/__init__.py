"""A stateful fake of the Kuaishou mini-program platform, for tests and benchmarks.

:class:`FakeKuaishou` serves the platform's "basic info" endpoints over real HTTP with
per-app state, the platform-authorization (OAuth) endpoints (:class:`FakeOAuth`, as
``fake.oauth``), the platform's signed and encrypted pushes (:class:`FakePush`, as
``fake.push``), token expiry and revocation, rate limiting and injectable :class:`Fault`
answers. It depends on nothing else in ``kuaishou_mp``: it stands in for the remote side.

Example::

    async with FakeKuaishou() as fake:
        app = fake.add_authorizer()
        fake.inject(app.app_id, Fault.http(503))
        ...  # point a client at fake.base_url
"""

from __future__ import annotations

from ._basic_info import APP_INFO_PATH, SERVER_DOMAIN_PATH, WEBVIEW_DOMAIN_PATH
from ._fake import CHAOS_KINDS, FakeKuaishou
from ._faults import Fault, FaultKind
from ._models import SERVER_DOMAIN_KEYS, RecordedRequest
from ._oauth import OAUTH_PATHS, FakeOAuth
from ._push import FakePush, PushDelivery
from ._registry import FakeAuthorizer

__all__ = [
    "APP_INFO_PATH",
    "CHAOS_KINDS",
    "OAUTH_PATHS",
    "SERVER_DOMAIN_KEYS",
    "SERVER_DOMAIN_PATH",
    "WEBVIEW_DOMAIN_PATH",
    "FakeAuthorizer",
    "FakeKuaishou",
    "FakeOAuth",
    "FakePush",
    "Fault",
    "FaultKind",
    "PushDelivery",
    "RecordedRequest",
]
