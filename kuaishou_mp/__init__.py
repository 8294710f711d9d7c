"""kuaishou-mp: an asyncio SDK for the Kuaishou mini-program third-party platform.

Read each authorized mini-program's basic info and manage its server and webview domains, for
thousands of mini-programs at once, within the platform's limits.
"""

from __future__ import annotations

from ._client import DEFAULT_BASE_URL, Client
from ._default import DEFAULT, Default
from ._logging import setup_logging as _setup_logging
from ._session import ConnectionLimits
from .bulk import BulkProgress, BulkResult, BulkRun, BulkSummary
from .domains import DomainChanges, ReconcileMode, ReconcilePlan, ReconcileResult, plan_reconcile
from .errors import (
    DEFAULT_ERROR_CODES,
    APIError,
    AuthError,
    BadRequestError,
    ClientClosedError,
    DomainNotFoundError,
    InvalidInputError,
    InvalidPushError,
    KuaishouError,
    PlatformUnavailableError,
    RateLimitedError,
    RefreshTokenExpiredError,
    RequestTimeoutError,
    ResponseValidationError,
    ServerError,
    TokenExpiredError,
    TransportError,
)
from .hooks import (
    AttemptEnd,
    AttemptStart,
    BulkProgressEvent,
    CallEnd,
    CircuitChange,
    Hooks,
    RetryEvent,
    ThrottleEvent,
)
from .models import (
    AppCategory,
    AppInfo,
    AppStatus,
    AuditInfo,
    AuditStatus,
    Authorizer,
    DomainAction,
    ServerDomains,
    Subject,
    SubjectType,
    WebviewDomains,
)
from .ratelimit import InProcessLimiter, Limiter, RateLimit
from .retry import RetryPolicy
from .retry_budget import RetryBudget
from .timeout import Timeout
from .tokens import InMemoryTokenProvider, TokenProvider, TokenUnavailableError

__version__ = "0.1.0"

_setup_logging()

__all__ = [
    "DEFAULT",
    "DEFAULT_BASE_URL",
    "DEFAULT_ERROR_CODES",
    "APIError",
    "AppCategory",
    "AppInfo",
    "AppStatus",
    "AttemptEnd",
    "AttemptStart",
    "AuditInfo",
    "AuditStatus",
    "AuthError",
    "Authorizer",
    "BadRequestError",
    "BulkProgress",
    "BulkProgressEvent",
    "BulkResult",
    "BulkRun",
    "BulkSummary",
    "CallEnd",
    "CircuitChange",
    "Client",
    "ClientClosedError",
    "ConnectionLimits",
    "Default",
    "DomainAction",
    "DomainChanges",
    "DomainNotFoundError",
    "Hooks",
    "InMemoryTokenProvider",
    "InProcessLimiter",
    "InvalidInputError",
    "InvalidPushError",
    "KuaishouError",
    "Limiter",
    "PlatformUnavailableError",
    "RateLimit",
    "RateLimitedError",
    "ReconcileMode",
    "ReconcilePlan",
    "ReconcileResult",
    "RefreshTokenExpiredError",
    "RequestTimeoutError",
    "ResponseValidationError",
    "RetryBudget",
    "RetryEvent",
    "RetryPolicy",
    "ServerDomains",
    "ServerError",
    "Subject",
    "SubjectType",
    "ThrottleEvent",
    "Timeout",
    "TokenExpiredError",
    "TokenProvider",
    "TokenUnavailableError",
    "TransportError",
    "WebviewDomains",
    "__version__",
    "plan_reconcile",
]
