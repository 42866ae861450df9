"""Confidence intervals used throughout the analysis (one method, stated once)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_ci(values: np.ndarray, confidence: float) -> dict[str, float | int | None]:
    """Mean with a Student-t interval over independent units.

    Used on per-unit values (a unit's held-out rescue averaged over cross-fitting repeats), so the
    interval reflects the sampling of units; it does not add the variability of refitting on other
    training sets, and is therefore somewhat narrow for the fitted policies (Nadeau & Bengio 2003).
    Non-finite values (operator not assayed) are dropped. Fewer than two units: no interval.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n_units": 0}
    mean = float(values.mean())
    if n < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "n_units": n}
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n_units": n}
