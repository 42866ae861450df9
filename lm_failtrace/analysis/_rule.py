"""The paper's training-free routing rule (docs/method.md section 5) as a fitted estimator.

Deployment routes failures one at a time, so the z-scores of a single failure must come from a
*calibration population* seen earlier: :meth:`PaperRule.fit` stores its per-feature mean and
population std, :meth:`PaperRule.predict` reuses them for any number of rows. The published
protocol instead z-scores the population it evaluates; :func:`route_batch` is that form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from lm_failtrace.analysis._defaults import DEFAULT_FALLBACK, DEFAULT_MAPPING, TOLERANCE
from lm_failtrace.analysis._features import feature_matrix, standardize, zscore
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import LOGIT_FEATURES


class PaperRule(BaseEstimator):
    """Route each failure to the operator mapped to its largest feature z-score.

    z = (x - mean_) / scale_ with the calibration population's mean and population std (ddof=0;
    z = 0 for a feature whose std is 0). The unit goes to ``mapping[f]`` for the feature ``f`` with
    the largest z; ties go to the feature listed first in ``features``. If every z <= 0 the unit
    goes to ``fallback``. Ties and the ``z <= 0`` test allow an absolute tolerance of
    :data:`TOLERANCE` (1e-9): z-scores equal on paper differ in their last bits with the order of
    the units, and routes must not depend on that order.

    Args:
        features: feature columns, in tie-break order.
        mapping: feature -> operator; ``None`` = the paper's (logit and outcome features).
        fallback: operator when no z is positive.
    """

    _state = ("feature_names_in_", "mean_", "scale_", "routes_")

    def __init__(
        self,
        features: Sequence[str] = LOGIT_FEATURES,
        mapping: Mapping[str, str] | None = None,
        fallback: str = DEFAULT_FALLBACK,
    ) -> None:
        self.features = features
        self.mapping = mapping
        self.fallback = fallback

    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> PaperRule:
        """Store the calibration population's per-feature mean and std; ``y`` is ignored."""
        mapping = DEFAULT_MAPPING if self.mapping is None else self.mapping
        unmapped = [f for f in self.features if f not in mapping]
        if unmapped:
            raise InputError(f"feature(s) {', '.join(unmapped)} have no operator in the mapping")
        matrix = feature_matrix(X, self.features)
        if len(matrix) == 0:
            raise InputError("cannot calibrate the routing rule on zero units")
        self.feature_names_in_ = np.array(list(self.features), dtype=object)
        self.n_features_in_ = len(self.features)
        self.mean_, self.scale_ = standardize(matrix)
        self.routes_ = np.array([mapping[f] for f in self.features], dtype=object)
        return self

    def decision_function(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The z-scores of ``X`` under the calibration statistics, shape (n, n_features)."""
        check_is_fitted(self, "mean_")
        return zscore(feature_matrix(X, self.feature_names_in_), self.mean_, self.scale_)

    def route_index(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Index of the winning feature per row; ``n_features_in_`` = the fallback.

        The integer form lets a million-unit evaluation avoid per-row strings.
        """
        z = self.decision_function(X)
        top = z.max(axis=1)
        best = np.argmax(z >= (top - TOLERANCE)[:, None], axis=1)  # first (near-)maximum
        return np.where(top > TOLERANCE, best, self.n_features_in_)

    @property
    def targets_(self) -> np.ndarray:
        """Operator of each :meth:`route_index` value: the mapped operators, then the fallback."""
        return np.append(self.routes_, self.fallback).astype(object)

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Operator name per row (object array)."""
        index = self.route_index(X)  # checks fitted first
        return self.targets_[index]

    def is_fallback(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """True where a row is routed by the fallback (no positive z)."""
        return self.route_index(X) == self.n_features_in_


def route_batch(
    X: pd.DataFrame | np.ndarray,
    features: Sequence[str] = LOGIT_FEATURES,
    mapping: Mapping[str, str] | None = None,
    fallback: str = DEFAULT_FALLBACK,
) -> tuple[np.ndarray, np.ndarray]:
    """The published, batch form: z-score the population passed in, then route it.

    Returns:
        (operator name per row, True where the row fell back).
    """
    rule = PaperRule(features, mapping, fallback).fit(X)
    return rule.predict(X), rule.is_fallback(X)
