"""Turn what callers pass (a DataFrame of named columns or a bare array) into a feature matrix.

Shared by every estimator in this package so that all of them check column layouts the same way
and fail with the same located message.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lm_failtrace.errors import InputError


def feature_matrix(X: pd.DataFrame | np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Float matrix of ``features`` (DataFrame: selected by name; array: columns in that order).

    Raises:
        InputError: a named column is missing, the array has the wrong width, or a value is not a
            finite number.
    """
    features = list(features)
    if isinstance(X, pd.DataFrame):
        missing = [f for f in features if f not in X.columns]
        if missing:
            raise InputError(
                f"missing feature column(s) {', '.join(missing)} "
                f"(columns present: {', '.join(map(str, X.columns))})"
            )
        try:
            matrix = X.loc[:, features].to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"feature columns must be numeric: {exc}") from exc
    else:
        matrix = np.asarray(X, dtype=float)
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[1] != len(features):
            raise InputError(
                f"expected {len(features)} feature columns ({', '.join(features)}), "
                f"got an array of shape {matrix.shape}"
            )
    if not np.isfinite(matrix).all():
        row, col = np.argwhere(~np.isfinite(matrix))[0]
        raise InputError(f"row {row}: feature {features[col]!r} is not a finite number")
    return matrix


def standardize(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and population standard deviations (ddof=0) of a calibration population.

    The paper z-scores with the population std; a zero std is kept as 0 and turned into z = 0 by
    :func:`zscore`, so a constant feature never routes. "Zero" means the column is exactly
    constant: ``np.std`` of three copies of 682.79 is ~1e-13, not 0, and would turn rounding noise
    into z-scores of +-1.
    """
    constant = np.ptp(matrix, axis=0) == 0
    return matrix.mean(axis=0), np.where(constant, 0.0, matrix.std(axis=0))


def zscore(matrix: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x - mean) / scale`` with z = 0 wherever ``scale`` is 0."""
    safe = np.where(scale > 0, scale, 1.0)
    return np.where(scale > 0, (matrix - mean) / safe, 0.0)
