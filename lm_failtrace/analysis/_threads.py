"""Run the analysis with one BLAS/OpenMP thread.

The models fitted here are tiny (hundreds of units, a handful of features) and fitted hundreds of
times; with a multi-threaded BLAS each fit pays thread start-up and contention, which measured
7x slower on a 2-core machine (21 s vs 3 s for one cell). One thread is the fast setting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

F = TypeVar("F", bound=Callable[..., Any])


def single_threaded(func: F) -> F:
    """Decorator: run ``func`` under ``threadpool_limits(1)``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with threadpool_limits(limits=1):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
