"""Recoverability regimes of failure units from measured rescue rates (docs/method.md section 4).

Rescue rates are fractions such as 0.15 and 0.10 whose difference in binary floating point is
0.04999999999999999; compared exactly, that unit would miss a 0.05 threshold that it meets on paper.
Every threshold comparison therefore allows an absolute tolerance of :data:`TOLERANCE` (1e-9, far
below the 1/20 resolution of any realistic rescue rate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from lm_failtrace.analysis._defaults import RETRY, TOLERANCE
from lm_failtrace.analysis._stats import proportion_ci
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import PAPER_OPERATORS

#: Regime names, in the order reports list them.
REGIMES: tuple[str, ...] = ("steerable", "resample", "beyond_reach")


class RegimeLabeler(BaseEstimator):
    """Label failure units ``steerable`` / ``resample`` / ``beyond_reach``.

    With ``best`` = the highest rescue rate over the non-retry operators *assayed* for a unit (NaN
    = not assayed, excluded): ``steerable`` if ``best - retry >= delta`` and
    ``1 - retry >= reach``; else ``beyond_reach`` if ``best == 0``; else ``resample``. Each
    comparison allows :data:`TOLERANCE`.

    Args:
        operators: rescue-rate columns, in the column order of array inputs; must include retry.
        delta: required gain of the best bounded intervention over retry.
        reach: required headroom ``1 - retry``.
    """

    def __init__(
        self,
        operators: Sequence[str] = PAPER_OPERATORS,
        delta: float = 0.05,
        reach: float = 0.50,
    ) -> None:
        self.operators = operators
        self.delta = delta
        self.reach = reach

    def fit(self, R: pd.DataFrame | np.ndarray | None = None, y: None = None) -> RegimeLabeler:
        """Check the operator set (labels need no learned state beyond it); returns ``self``."""
        operators = list(self.operators)
        if RETRY not in operators:
            raise InputError(f"operators must include {RETRY!r} to label regimes")
        if len(operators) < 2:
            raise InputError("regimes need retry and at least one other operator")
        self.operators_ = operators
        self.retry_index_ = operators.index(RETRY)
        return self

    def predict(self, R: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Regime name of every row (object array)."""
        return np.asarray(REGIMES, dtype=object)[self.predict_codes(R)]

    def predict_codes(self, R: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Index into :data:`REGIMES` of every row (vectorised; no per-row strings).

        Raises:
            InputError: retry is not assayed for a unit, or no other operator is.
        """
        check_is_fitted(self, "operators_")
        rates = self._rates(R)
        retry = rates[:, self.retry_index_]
        others = np.delete(rates, self.retry_index_, axis=1)
        assayed = ~np.isnan(others)
        for bad, what in ((np.isnan(retry), "retry"), (~assayed.any(axis=1), "any non-retry")):
            if bad.any():
                raise InputError(
                    f"row {int(np.argmax(bad))}: {what} operator is not assayed "
                    "(regimes need the retry rescue rate and at least one other)"
                )
        best = np.where(assayed, others, -np.inf).max(axis=1)
        steerable = (best - retry >= self.delta - TOLERANCE) & (
            1.0 - retry >= self.reach - TOLERANCE
        )
        beyond = ~steerable & (np.abs(best) <= TOLERANCE)
        codes = np.ones(len(rates), dtype=np.int64)
        codes[steerable] = 0
        codes[beyond] = 2
        return codes

    def fit_predict(self, R: pd.DataFrame | np.ndarray, y: None = None) -> np.ndarray:
        return self.fit(R).predict(R)

    def _rates(self, R: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(R, pd.DataFrame):
            missing = [op for op in self.operators_ if op not in R.columns]
            if missing:
                raise InputError(f"missing operator column(s) {', '.join(missing)}")
            return R.loc[:, self.operators_].to_numpy(dtype=float)
        rates = np.asarray(R, dtype=float)
        if rates.ndim != 2 or rates.shape[1] != len(self.operators_):
            raise InputError(
                f"expected {len(self.operators_)} operator columns "
                f"({', '.join(self.operators_)}), got an array of shape {rates.shape}"
            )
        return rates


def regime_summary(labels: np.ndarray, confidence: float = 0.95) -> dict[str, dict]:
    """Counts, fractions and Wilson intervals of each regime (all regimes, zeros included)."""
    codes = pd.Index(REGIMES).get_indexer(labels)
    return regime_summaries(codes, np.zeros(len(labels), dtype=np.int64), 1, confidence)[0]


def regime_summaries(
    regimes: np.ndarray, groups: np.ndarray, n_groups: int, confidence: float = 0.95
) -> list[dict]:
    """Regime counts, fractions and share intervals of every group at once.

    Args:
        regimes: index into :data:`REGIMES` per unit (:meth:`RegimeLabeler.predict_codes`).
        groups: group index per unit, in ``range(n_groups)``.
        confidence: level of each share's Wilson interval (``intervals``; none with fewer than
            ``MIN_UNITS_FOR_INTERVAL`` units, see :mod:`lm_failtrace.analysis._stats`).
    """
    counts = np.bincount(groups * len(REGIMES) + regimes, minlength=n_groups * len(REGIMES))
    counts = counts.reshape(n_groups, len(REGIMES))
    totals = counts.sum(axis=1)
    return [
        {
            "counts": {r: int(row[j]) for j, r in enumerate(REGIMES)},
            "fractions": {r: float(row[j] / max(total, 1)) for j, r in enumerate(REGIMES)},
            "intervals": {
                r: proportion_ci(int(row[j]), int(total), confidence) for j, r in enumerate(REGIMES)
            },
        }
        for row, total in zip(counts, totals, strict=True)
    ]
