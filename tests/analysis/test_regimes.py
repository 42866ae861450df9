"""Regime labels (docs/method.md section 4): thresholds, tolerance, missing assays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from lm_failtrace.analysis import TOLERANCE, RegimeLabeler
from lm_failtrace.errors import InputError

OPS = ("retry", "sparse_steer", "dense_steer")


def _label(rows, **kw):
    return RegimeLabeler(OPS, **kw).fit_predict(np.array(rows, dtype=float)).tolist()


def test_float_noise_at_the_threshold_counts_as_meeting_it():
    assert 0.15 - 0.10 < 0.05  # the reason for the tolerance
    assert _label([[0.10, 0.15, 0.0]]) == ["steerable"]
    assert _label([[0.10, 0.1499, 0.0]]) == ["resample"]


def test_each_regime_and_reach():
    rows = [
        [0.2, 0.6, 0.1],  # steerable
        [0.6, 0.9, 0.1],  # gain but 1 - retry < reach: resample
        [0.0, 0.0, 0.0],  # nothing rescues: beyond_reach
        [0.3, 0.0, 0.0],  # retry helps, best is 0: beyond_reach
        [0.4, 0.42, 0.3],  # small gain: resample
    ]
    assert _label(rows) == ["steerable", "resample", "beyond_reach", "beyond_reach", "resample"]
    assert _label([[0.2, 0.6, 0.1]], delta=0.5) == ["resample"]
    assert _label([[0.6, 0.9, 0.1]], reach=0.4) == ["steerable"]


def test_not_assayed_operator_is_excluded_from_best():
    assert _label([[0.1, np.nan, 0.5]]) == ["steerable"]
    assert _label([[0.1, np.nan, 0.0]]) == ["beyond_reach"]


def test_missing_retry_or_all_others_is_an_error():
    with pytest.raises(InputError, match="row 1: retry"):
        _label([[0.1, 0.2, 0.3], [np.nan, 0.2, 0.3]])
    with pytest.raises(InputError, match="non-retry"):
        _label([[0.1, np.nan, np.nan]])
    with pytest.raises(InputError, match="retry"):
        RegimeLabeler(("sparse_steer", "dense_steer")).fit()


def test_not_fitted_and_wrong_width():
    with pytest.raises(NotFittedError):
        RegimeLabeler(OPS).predict(np.zeros((1, 3)))
    with pytest.raises(InputError, match="3 operator columns"):
        RegimeLabeler(OPS).fit().predict(np.zeros((1, 4)))


rates = st.integers(0, 20).map(lambda k: k / 20)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(rates, rates, rates), min_size=1, max_size=30))
def test_matches_exact_rational_definition(rows):
    """On k/20 rates the tolerant float labels equal the exact-arithmetic definition."""
    got = _label(rows)
    for (retry, a, b), label in zip(rows, got, strict=True):
        k_retry, k_best = round(retry * 20), max(round(a * 20), round(b * 20))
        if k_best - k_retry >= 1 and 20 - k_retry >= 10:
            assert label == "steerable"
        elif k_best == 0:
            assert label == "beyond_reach"
        else:
            assert label == "resample"


def test_tolerance_is_documented_value():
    assert TOLERANCE == 1e-9
