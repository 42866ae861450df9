"""The honest protocol, policy selection, fitted policies and the deployable router."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from lm_failtrace.analysis import (
    AnalysisConfig,
    BestFixed,
    RidgeRouter,
    analyze,
    fit_router,
    load_router,
    policy_from_params,
    policy_to_params,
)
from lm_failtrace.errors import InputError
from lm_failtrace.formatting import to_jsonable
from lm_failtrace.profiles import PAPER_OPERATORS, validate_profiles


def _informative(n=300, seed=0) -> pd.DataFrame:
    """One cell where spread decides whether dense_steer or sparse_steer rescues."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0, 1, n)
    frame = pd.DataFrame(
        {
            "cell": "m|t",
            "model": "m",
            "task": "t",
            "problem_id": [str(i) for i in range(n)],
            "spread": spread,
            "concentration": rng.normal(0, 1, n),
            "logit_dispersion": rng.normal(0, 1, n),
            "retry": 0.2,
            "sparse_steer": np.where(spread < 0.5, 0.9, 0.1),
            "sparse_steer_random": 0.2,
            "local_temp": 0.2,
            "dense_steer": np.where(spread >= 0.5, 0.8, 0.2),
        }
    )
    return frame


def test_cross_fitting_is_deterministic_given_the_seed(synthetic, fast):
    a = analyze(synthetic, fast)
    b = analyze(synthetic, fast)
    assert json.dumps(to_jsonable(a)) == json.dumps(to_jsonable(b))
    other = analyze(synthetic, AnalysisConfig(**{**fast.__dict__, "random_state": 7}))

    def held(d):
        return [d["cells"][c]["honest"]["all_failures"]["ridge_router"]["mean"] for c in d["cells"]]

    assert held(a) != held(other)


def test_document_sections_and_oracle_ceiling(synthetic, fast):
    doc = analyze(synthetic, fast)
    assert set(doc) == {"config", "source", "cells", "pooled", "verdicts"}
    assert doc["config"]["n_repeats"] == 2
    json.dumps(to_jsonable(doc), allow_nan=False)
    for section in [*doc["cells"].values(), doc["pooled"]]:
        for pop in ("steerable_hard", "all_failures"):
            rows = section["honest"][pop]
            assert set(rows) == {"paper_rule", "best_fixed", "retry", "ridge_router", "oracle"}
            for row in rows.values():
                assert row["ci_low"] <= row["mean"] <= row["ci_high"]
            assert all(rows["oracle"]["mean"] >= r["mean"] - 1e-12 for r in rows.values())
        assert section["selection"]["selected"] in {
            "paper_rule",
            "best_fixed",
            "retry",
            "ridge_router",
        }
    assert doc["pooled"]["honest"]["all_failures"]["retry"]["n_units"] == len(synthetic)
    assert "model_identification" in doc["pooled"]
    assert set(doc["pooled"]["clustering"]["agreement_ari"]) == {"regime", "model", "cell"}


def test_retry_is_exact_and_policies_fit_on_training_folds(synthetic, fast):
    doc = analyze(synthetic, fast)
    for name, section in doc["cells"].items():
        frame = synthetic.frame[synthetic.frame["cell"] == name]
        assert section["honest"]["all_failures"]["retry"]["mean"] == pytest.approx(
            frame["retry"].mean()
        )
        oracle = frame[list(PAPER_OPERATORS)].max(axis=1).mean()
        assert section["honest"]["all_failures"]["oracle"]["mean"] == pytest.approx(oracle)


def test_fitted_router_learns_a_real_signal_and_says_so(fast):
    table = validate_profiles(_informative())
    doc = analyze(table, fast)
    honest = doc["cells"]["m|t"]["honest"]["all_failures"]
    assert honest["ridge_router"]["mean"] > honest["best_fixed"]["mean"] + 0.2
    assert honest["paper_rule"]["mean"] < honest["ridge_router"]["mean"]
    selection = doc["cells"]["m|t"]["selection"]
    assert selection["selected"] == "ridge_router"
    assert selection["margin_over_best_fixed"]["ci_low"] > 0
    assert any("does NOT beat the cross-validated best fixed" in v for v in doc["verdicts"])


def test_rescue_per_thousand_tokens(make_frame, fast):
    table = validate_profiles(make_frame(tokens=True))
    doc = analyze(table, fast)
    frame = table.frame[table.frame["cell"] == "m1|t1"]
    row = doc["cells"]["m1|t1"]["honest"]["all_failures"]["retry"]
    assert row["rescue_per_1k_tokens"] == pytest.approx(
        frame["retry"].sum() / frame["retry_tokens"].sum() * 1000
    )


def test_policy_params_round_trip_through_json():
    table = validate_profiles(_informative())
    X, R = table.frame[list(table.schema.features)], table.frame[list(PAPER_OPERATORS)]
    for est in (RidgeRouter().fit(X, R), BestFixed().fit(X, R)):
        again = policy_from_params(json.loads(json.dumps(to_jsonable(policy_to_params(est)))))
        assert again.predict(X).tolist() == est.predict(X).tolist()
    with pytest.raises(NotFittedError):
        RidgeRouter().predict(X)


def test_fit_and_load_router_per_task(make_frame, fast):
    frame = make_frame(cells=("m|t1", "m|t2"), n_per_cell=50)
    params = fit_router(validate_profiles(frame), fast)
    params = json.loads(json.dumps(to_jsonable(params), allow_nan=False))
    assert set(params["per_task"]) == {"t1", "t2"} and params["model"] == "m"
    router = load_router(params)
    rows = frame.iloc[[0, 60]]
    from lm_failtrace.analysis import make_policy

    expected = [
        policy_from_params(params["per_task"]["t1"]).predict(rows.iloc[[0]])[0],
        policy_from_params(params["per_task"]["t2"]).predict(rows.iloc[[1]])[0],
    ]
    assert router.predict(rows).tolist() == expected
    pooled = policy_from_params(params["pooled"]).predict(rows)
    assert router.predict(rows.drop(columns="task")).tolist() == pooled.tolist()
    assert router.predict(rows.assign(task="unknown")).tolist() == pooled.tolist()
    with pytest.raises(InputError, match="missing feature column"):
        router.predict(rows.drop(columns="spread"))
    assert make_policy(params["policy"], fast) is not None


def test_fit_router_needs_one_model(synthetic, fast):
    with pytest.raises(InputError, match="several models"):
        fit_router(synthetic, fast)
    assert fit_router(synthetic, fast, model="m2")["per_task"].keys() == {"t1"}
    with pytest.raises(InputError, match="format"):
        load_router({"policy": "retry"})


def test_config_errors_name_the_argument(synthetic):
    with pytest.raises(InputError, match="retry"):
        analyze(synthetic, AnalysisConfig(operators=("sparse_steer", "dense_steer")))
    with pytest.raises(InputError, match="budget"):
        analyze(synthetic, AnalysisConfig(features=("spread", "truncation_rate")))
    with pytest.raises(InputError, match="unknown policy"):
        analyze(synthetic, AnalysisConfig(policies=("magic",)))
    with pytest.raises(InputError, match="unknown cell"):
        analyze(synthetic, cell="nope")


def test_equal_rescue_selects_the_simplest_policy() -> None:
    """Nothing is deployed for a tie: retry over a fixed operator over a rule over a router."""
    from lm_failtrace.analysis import AnalysisConfig
    from lm_failtrace.analysis._honest import select_policy

    class Held:
        def __init__(self, values):
            self.rescue = np.array(values, dtype=float)

        def per_unit(self):
            return self.rescue

    same = [0.5, 0.25, 0.75]
    held = {p: Held(same) for p in ("paper_rule", "best_fixed", "retry", "ridge_router")}
    assert select_policy(held, AnalysisConfig())["selected"] == "retry"
    held["retry"] = Held([0.0, 0.0, 0.0])
    assert select_policy(held, AnalysisConfig())["selected"] == "best_fixed"
