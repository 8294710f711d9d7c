"""The call pipeline shared by :class:`~kuaishou_mp.Client` and the auth client.

``_request`` holds the request object, ``_layers`` the layers in order (read its docstring
first), ``_retries`` the retry policy as tenacity strategies, ``_timeouts`` every timeout
decision, ``_observe`` what the layers tell the client's hooks, ``_seams`` the protocols later
features plug into, ``_capacity`` the client-wide learned rate, retry budget and outage circuit,
``_outcomes`` what an attempt's end tells them.
"""

from ._capacity import Capacity, CapacityThrottle
from ._layers import Decoder, Pipeline
from ._observe import Observer
from ._request import Request
from ._seams import (
    AllowEveryRetry,
    PenalizeLimiter,
    RetryGate,
    ThrottleFeedback,
)
from ._timeouts import TimerPool

__all__ = [
    "AllowEveryRetry",
    "Capacity",
    "CapacityThrottle",
    "Decoder",
    "Observer",
    "PenalizeLimiter",
    "Pipeline",
    "Request",
    "RetryGate",
    "ThrottleFeedback",
    "TimerPool",
]
