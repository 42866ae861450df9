"""The gradient-boosted router: learns a feature threshold, round-trips through JSON exactly,
deploys through ``fit_router`` / ``load_router`` and runs in the honest protocol (opt-in)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lm_failtrace.analysis import (
    POLICIES,
    AnalysisConfig,
    GradientBoostedRouter,
    analyze,
    fit_router,
    load_router,
    policy_from_params,
    policy_to_params,
)
from lm_failtrace.analysis._defaults import DEFAULT_POLICIES
from lm_failtrace.cli import main
from lm_failtrace.datasets import paper_profiles

FEATURES = ("f0", "f1", "f2")
OPERATORS = ("retry", "up", "down")


def threshold_table(n: int, seed: int, missing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Features and rescues where ``f1 > 0.3`` decides whether ``up`` or ``down`` rescues."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    high = X[:, 1] > 0.3
    R = np.column_stack(
        [
            np.full(n, 0.3),
            np.where(high, 0.8, 0.1),
            np.where(high, 0.1, 0.7),
        ]
    )
    R = np.clip(R + rng.normal(0.0, 0.1, R.shape), 0.0, 1.0)
    R[rng.random(R.shape) < missing] = np.nan
    return X, R


def sklearn_rescue(router: GradientBoostedRouter, X: np.ndarray) -> np.ndarray:
    return np.column_stack([model.predict(X) for model in router.estimators_])


def test_learns_the_deciding_feature() -> None:
    X, R = threshold_table(600, seed=0, missing=0.2)
    router = GradientBoostedRouter(FEATURES, OPERATORS).fit(X, R)
    X_test, _ = threshold_table(2000, seed=1)
    truth = np.where(X_test[:, 1] > 0.3, "up", "down")
    assert (router.predict(X_test) == truth).mean() > 0.95
    assert router.trees_.shape == (3 * 50, 2)
    np.testing.assert_allclose(router.predict_rescue(X_test), sklearn_rescue(router, X_test))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_json_round_trip_is_exact(seed: int) -> None:
    X, R = threshold_table(300, seed=seed, missing=0.3)
    router = GradientBoostedRouter(FEATURES, OPERATORS, random_state=seed).fit(X, R)
    params = json.loads(json.dumps(policy_to_params(router), allow_nan=False))
    assert "estimators_" not in params["state"]  # plain data only, no fitted sklearn objects
    loaded = policy_from_params(params)
    X_new = np.random.default_rng(100 + seed).normal(scale=2.0, size=(5000, len(FEATURES)))
    frame = pd.DataFrame(X_new, columns=list(FEATURES))
    expected = sklearn_rescue(router, X_new)
    assert np.abs(router.predict_rescue(X_new) - expected).max() < 1e-9
    assert np.abs(loaded.predict_rescue(frame) - expected).max() < 1e-9
    assert (loaded.predict(frame) == router.predict(X_new)).all()


def test_unassayed_and_sparse_operators() -> None:
    X, R = threshold_table(40, seed=3)
    R[:, 2] = np.nan  # never assayed: never chosen
    R[1:, 1] = np.nan  # assayed once: a constant, no trees
    router = GradientBoostedRouter(FEATURES, OPERATORS).fit(X, R)
    assert len(router.trees_) == 50 and set(router.trees_[:, 1]) == {0}
    assert set(router.predict(X)) <= {"retry", "up"}
    loaded = policy_from_params(json.loads(json.dumps(policy_to_params(router))))
    np.testing.assert_array_equal(loaded.predict_rescue(X), router.predict_rescue(X))


def test_opt_in_policy() -> None:
    assert "gbm_router" in POLICIES and "gbm_router" not in DEFAULT_POLICIES


@pytest.fixture(scope="module")
def paper_cell():
    return paper_profiles().cell("sft0p6b|gsm8k")


def test_fit_router_deploys_it(paper_cell) -> None:
    config = AnalysisConfig(policies=("gbm_router",), n_repeats=1, n_folds=3)
    params = json.loads(json.dumps(fit_router(paper_cell, config), allow_nan=False))
    assert params["policy"] == "gbm_router"
    assert params["pooled"]["estimator"] == "GradientBoostedRouter"
    router = load_router(params)
    frame = paper_cell.frame
    routes = router.predict(frame)
    assert len(routes) == len(frame) and set(routes) <= set(params["operators"])
    fitted = GradientBoostedRouter(tuple(params["features"]), tuple(params["operators"])).fit(
        frame.loc[:, params["features"]], frame.loc[:, params["operators"]]
    )
    assert (routes == fitted.predict(frame.loc[:, params["features"]])).all()


def test_fit_router_selects_among_it(paper_cell) -> None:
    policies = ("paper_rule", "best_fixed", "retry", "ridge_router", "gbm_router")
    params = fit_router(paper_cell, AnalysisConfig(policies=policies, n_repeats=1, n_folds=3))
    assert {row["policy"] for row in params["selection"]["ranking"]} == set(policies)
    assert len(load_router(params).predict(paper_cell.frame)) == len(paper_cell.frame)


def test_analyze_lists_it_in_the_honest_section(paper_cell) -> None:
    config = AnalysisConfig(policies=(*DEFAULT_POLICIES, "gbm_router"), n_repeats=2)
    doc = analyze(paper_cell, config)
    honest = doc["cells"]["sft0p6b|gsm8k"]["honest"]["all_failures"]
    assert set(honest) == {*DEFAULT_POLICIES, "gbm_router", "oracle"}
    assert 0.0 <= honest["gbm_router"]["mean"] <= honest["oracle"]["mean"]


def test_cli_policies_flag(tmp_path, paper_cell) -> None:
    path = tmp_path / "cell.csv"
    paper_cell.frame.to_csv(path, index=False)
    args = ["analyze", str(path), "--json", "--repeats", "1", "--folds", "3"]
    result = CliRunner().invoke(main, [*args, "--policies", "best_fixed,gbm_router"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["config"]["policies"] == ["best_fixed", "gbm_router"]
    assert set(doc["cells"]["sft0p6b|gsm8k"]["honest"]["all_failures"]) == {
        "best_fixed",
        "gbm_router",
        "oracle",
    }
    bad = CliRunner().invoke(main, [*args, "--policies", "nope"])
    assert bad.exit_code == 2 and "--policies: unknown policy 'nope'" in bad.output
