"""kuaishou-mp: an asyncio SDK for the Kuaishou mini-program third-party platform.

Read each authorized mini-program's basic info and manage its server and webview domains, for
thousands of mini-programs at once, within the platform's limits.
"""

from __future__ import annotations

from ._client import DEFAULT_BASE_URL, Client
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
    RateLimitedError,
    RefreshTokenExpiredError,
    RequestTimeoutError,
    ResponseValidationError,
    ServerError,
    TokenExpiredError,
    TransportError,
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
from .timeout import Timeout
from .tokens import InMemoryTokenProvider, TokenProvider, TokenUnavailableError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_ERROR_CODES",
    "APIError",
    "AppCategory",
    "AppInfo",
    "AppStatus",
    "AuditInfo",
    "AuditStatus",
    "AuthError",
    "Authorizer",
    "BadRequestError",
    "BulkProgress",
    "BulkResult",
    "BulkRun",
    "BulkSummary",
    "Client",
    "ClientClosedError",
    "ConnectionLimits",
    "DomainAction",
    "DomainChanges",
    "DomainNotFoundError",
    "InMemoryTokenProvider",
    "InProcessLimiter",
    "InvalidInputError",
    "InvalidPushError",
    "KuaishouError",
    "Limiter",
    "RateLimit",
    "RateLimitedError",
    "ReconcileMode",
    "ReconcilePlan",
    "ReconcileResult",
    "RefreshTokenExpiredError",
    "RequestTimeoutError",
    "ResponseValidationError",
    "RetryPolicy",
    "ServerDomains",
    "ServerError",
    "Subject",
    "SubjectType",
    "Timeout",
    "TokenExpiredError",
    "TokenProvider",
    "TokenUnavailableError",
    "TransportError",
    "WebviewDomains",
    "__version__",
    "plan_reconcile",
]
