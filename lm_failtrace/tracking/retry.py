"""Retry MLflow client calls that failed for a passing reason (a busy store, a restarting server).

MLflow's REST client already retries HTTP 429/5xx and dropped connections on its own
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES``); what still reaches us is a store that was busy for longer
(sqlite's lock after its 20 s busy timeout, a PostgreSQL deadlock or serialization failure) or a
server that answered "temporarily unavailable". A retried write is safe here: every write
``failtrace log`` makes is tagged with its attempt, and one that happened before its error was
reported is either found again (a claim, a tag set twice) or cleaned up by recovery
(:mod:`lm_failtrace.tracking.recovery`).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Tries per call, and the first pause between two (doubled each time).
ATTEMPTS = 4
BACKOFF_S = 0.5

#: MLflow error codes that say "try again later".
_TRANSIENT_CODES = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"}
)
#: An internal error of the store whose message says it was busy rather than wrong.
_BUSY = re.compile(
    r"database is locked|deadlock|could not serialize|connection (refused|reset)|timed? ?out",
    re.I,
)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure that the same call may not meet again."""
    code = getattr(exc, "error_code", None)
    if code in _TRANSIENT_CODES:
        return True
    if code == "INTERNAL_ERROR" or exc.__class__.__name__ == "OperationalError":
        return bool(_BUSY.search(str(exc)))
    return isinstance(exc, ConnectionError)


def retried(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, tried up to :data:`ATTEMPTS` times while it fails transiently."""
    for attempt in range(ATTEMPTS):
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if attempt == ATTEMPTS - 1 or not transient(exc):
                raise
            time.sleep(BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


class RetryingClient:
    """An ``MlflowClient`` whose method calls are :func:`retried`; other attributes pass through."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return functools.partial(retried, attr)
