"""Large populations (>= LARGE_POPULATION units): the shortcuts apply there and only there.

Closed-form BCa intervals, cross-fitting and recoverability that stop repeating once settled, and
sampled clustering and recoverability (docs/method.md section 8, *Scale*). Below the threshold the
analysis is exactly what it was without them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lm_failtrace.analysis import (
    AnalysisConfig,
    _cluster,
    _cost,
    _honest,
    _recover,
    _stats,
    analyze,
)
from lm_failtrace.analysis._data import prepare, sample_index, unit_arrays
from lm_failtrace.analysis._defaults import LARGE_POPULATION
from lm_failtrace.analysis._honest import HeldOut, cross_fit
from lm_failtrace.analysis._stats import (
    PRINTED_PRECISION,
    _bca_levels,
    bootstrap_means,
    mean_ci,
    settled,
)
from lm_failtrace.formatting import to_jsonable
from lm_failtrace.profiles import validate_profiles

FAST = AnalysisConfig(n_repeats=4, n_folds=3, n_bootstrap=3, k_range=(2, 3))


@pytest.fixture
def table(make_frame):
    """One cell of ``n`` synthetic units (rates in multiples of 1/20, token counts)."""

    def make(n: int):
        return validate_profiles(make_frame(("m|t",), n_per_cell=n, tokens=True), source="big")

    return make


def _units(table, config: AnalysisConfig = FAST):
    table, config = prepare(table, config)
    return unit_arrays(table, config), config


def test_settled_rule() -> None:
    assert not settled(np.array([0.5]), 0.01)  # one repeat has no standard error
    assert settled(np.array([0.5, 0.5]), 0.0)
    # Standard error across repeats 0.0004 <= 0.0005 (printed precision) ...
    assert settled(np.array([0.5, 0.5008]), 0.0)
    # ... 0.0015 is not, unless the interval over units is four times as wide.
    assert not settled(np.array([0.5, 0.503]), 0.004)
    assert settled(np.array([0.5, 0.503]), 0.0065)
    assert PRINTED_PRECISION == 0.0005


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).integers(0, 21, (10, LARGE_POPULATION)).mean(axis=0) / 20,
        np.random.default_rng(2).exponential(1, LARGE_POPULATION) ** 2,
        (np.random.default_rng(3).uniform(size=2 * LARGE_POPULATION) < 0.02).astype(float),
        np.random.default_rng(4).integers(600, 1800, LARGE_POPULATION) / 4,
    ],
    ids=["rates", "skewed", "rare", "tokens"],
)
def test_closed_form_interval_matches_a_long_bootstrap(values: np.ndarray) -> None:
    row = mean_ci(values, 0.95, bounds=(-np.inf, np.inf))
    assert row["method"] == "bca_analytic" and row["n_units"] == len(values)
    boot = bootstrap_means(values, 20_000, np.random.default_rng(0))
    expected = np.quantile(boot, _bca_levels(values, boot, values.mean(), 0.95))
    se = values.std() / np.sqrt(len(values))
    assert abs(row["ci_low"] - expected[0]) < 0.1 * se
    assert abs(row["ci_high"] - expected[1]) < 0.1 * se
    assert values.min() <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= values.max()


def test_below_the_threshold_intervals_are_bootstrapped() -> None:
    values = np.random.default_rng(0).integers(0, 21, LARGE_POPULATION - 1) / 20
    assert mean_ci(values, 0.95)["method"] == "bca_bootstrap"


def test_cross_fitting_stops_early_only_on_large_populations(table) -> None:
    large, config = _units(table(LARGE_POPULATION + 2_000))
    held = cross_fit(large, config)
    assert {len(h.rescue) for h in held.values()} == {2}  # settled after the second repeat
    small, config = _units(table(LARGE_POPULATION - 1))
    assert {len(h.rescue) for h in cross_fit(small, config).values()} == {4}


def test_pooling_keeps_the_repeats_every_population_has() -> None:
    parts = [HeldOut(np.zeros((2, 3)), np.ones((2, 3))), HeldOut(np.ones((4, 5)), np.ones((4, 5)))]
    pooled = HeldOut.concat(parts)
    assert pooled.rescue.shape == (2, 8) and pooled.tokens.shape == (2, 8)
    assert pooled.rescue[:, 3:].all() and not pooled.rescue[:, :3].any()


def test_large_sections_say_what_was_sampled_and_repeated(table) -> None:
    n = LARGE_POPULATION + 2_000
    doc = analyze(table(n), FAST)
    section = doc["pooled"]
    assert section["honest"]["n_repeats"]["all_failures"] == 2
    assert section["recoverability"]["n_sampled"] == LARGE_POPULATION
    assert section["recoverability"]["n_repeats"] <= FAST.n_repeats
    assert section["clustering"]["n_sampled"] == LARGE_POPULATION
    assert sum(section["clustering"]["sizes"]) == n
    assert section["honest"]["all_failures"]["retry"]["method"] == "bca_analytic"
    assert section["honest"]["all_failures"]["retry"]["tokens"]["method"] == "bca_analytic"
    assert sample_index(LARGE_POPULATION, LARGE_POPULATION, 0) is None


def test_below_the_threshold_the_document_is_that_without_shortcuts(table, monkeypatch) -> None:
    """Just under 10,000 units: the same document as with every shortcut switched off."""
    small = table(LARGE_POPULATION - 1)
    config = AnalysisConfig(n_repeats=3, n_folds=3, n_bootstrap=3, k_range=(2, 3))
    with_shortcuts = json.dumps(to_jsonable(analyze(small, config)))
    never = 10**12
    monkeypatch.setattr(_stats, "ANALYTIC_UNITS", never)
    monkeypatch.setattr(_honest, "ADAPTIVE_UNITS", never)
    monkeypatch.setattr(_cost, "CALIBRATION_UNITS", never)
    monkeypatch.setattr(_recover, "LARGE_POPULATION", never)
    monkeypatch.setattr(_cluster, "LARGE_POPULATION", never)
    assert json.dumps(to_jsonable(analyze(small, config))) == with_shortcuts
    doc = json.loads(with_shortcuts)
    section = doc["pooled"]
    assert "n_sampled" not in section["recoverability"] and "n_sampled" not in section["clustering"]
    assert section["honest"]["n_repeats"]["all_failures"] == 3
