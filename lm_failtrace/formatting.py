"""Values made ready for output: one number format for people, one JSON conversion for machines.

Every stage prints numbers (terminal tables, verdict sentences, the HTML report) and writes JSON
(``--json``, MLflow artifacts, router params); one helper each keeps them consistent: integers
print as integers, missing or non-finite values print as ``n/a`` and are ``null`` in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: What a missing or non-finite number prints as.
MISSING = "n/a"
#: What an interval the analysis could not give (too few units) prints as.
TOO_FEW = "too few units"


def format_number(value: Any, digits: int = 3, missing: str = MISSING) -> str:
    """A number as people read it: ``3``, ``0.463``; ``missing`` for None, NaN and infinities.

    Integers (Python or numpy) print without decimals, floats with ``digits`` decimals (a float
    is a rate or a mean here, so its precision is shown even when it happens to be whole);
    anything that is not a number prints as ``str(value)``.
    """
    if value is None:
        return missing
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}" if math.isfinite(value) else missing
    return str(value)


def format_signed(value: float | None, digits: int = 3) -> str:
    """A difference with its sign: ``+0.012``, ``-0.040``; one that rounds to zero keeps two
    significant digits (``-0.00032``), so a bound just below 0 never prints as ``-0.000``."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value != 0 and abs(value) < 0.5 * 10**-digits:
        return f"{value:+.2g}"
    return f"{value:+.{digits}f}"


def format_interval(
    row: Mapping[str, Any] | None,
    value: Callable[[Any], str] = format_number,
    bound: Callable[[Any], str] | None = None,
) -> str:
    """An interval mapping (``mean``, ``ci_low``, ``ci_high``) as ``0.342 [0.275, 0.409]``.

    ``value`` formats the mean and ``bound`` the bounds (default: as the mean); without an
    interval, ``0.500 (too few units)``; without a mean, ``n/a``.
    """
    if not row or row.get("mean") is None:
        return MISSING
    if row.get("ci_low") is None or row.get("ci_high") is None:
        return f"{value(row['mean'])} ({TOO_FEW})"
    bound = bound or value
    return f"{value(row['mean'])} [{bound(row['ci_low'])}, {bound(row['ci_high'])}]"


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python values, tuples as lists, keys as strings,
    and non-finite floats as ``None``, so ``json.dumps(..., allow_nan=False)`` accepts it."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
