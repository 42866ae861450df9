"""Cost-aware policies: held-out spend, `skip`, the token budget and the routers' cost weight."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lm_failtrace.analysis import (
    SKIP,
    AnalysisConfig,
    BestFixed,
    GradientBoostedRouter,
    RidgeRouter,
    analyze,
    fit_router,
    load_router,
    policy_from_params,
)
from lm_failtrace.analysis._data import prepare, unit_arrays
from lm_failtrace.analysis._honest import cross_fit
from lm_failtrace.cli import main
from lm_failtrace.errors import InputError
from lm_failtrace.formatting import to_jsonable
from lm_failtrace.profiles import PAPER_OPERATORS, validate_profiles
from lm_failtrace.report.tables import analysis_text
from lm_failtrace.tracking.router_model import router_params

FEATURES = ["spread", "concentration", "logit_dispersion"]

#: Mean tokens per trial of each paper operator in :func:`_costly` (retry about 100).
COSTS = {"retry": 100.0, "sparse_steer": 300.0, "sparse_steer_random": 100.0,
         "local_temp": 100.0, "dense_steer": 150.0}  # fmt: skip


def _costly(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """One cell: spread decides whether the costly sparse_steer (3x retry's tokens) or the
    cheaper dense_steer (1.5x) rescues; a fifth of the units nothing rescues."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0, 1, n)
    hopeless = rng.uniform(0, 1, n) < 0.2
    frame = pd.DataFrame(
        {
            "cell": "m|t", "model": "m", "task": "t",
            "problem_id": [str(i) for i in range(n)],
            "spread": spread,
            "concentration": rng.normal(0, 1, n),
            "logit_dispersion": rng.normal(0, 1, n),
            "retry": np.where(hopeless, 0.0, 0.2),
            "sparse_steer": np.where(hopeless, 0.0, np.where(spread < 0.5, 0.9, 0.1)),
            "sparse_steer_random": np.where(hopeless, 0.0, 0.2),
            "local_temp": np.where(hopeless, 0.0, 0.2),
            "dense_steer": np.where(hopeless, 0.0, np.where(spread >= 0.5, 0.8, 0.2)),
        }
    )  # fmt: skip
    for op, cost in COSTS.items():
        frame[f"{op}_tokens"] = cost + rng.integers(0, 21, n) - 10.0
    return frame


FAST = AnalysisConfig(n_repeats=2, n_folds=3, n_bootstrap=3, k_range=(2, 3))


def _config(**changes) -> AnalysisConfig:
    return AnalysisConfig(**{**FAST.__dict__, **changes})


def test_cost_accounting_of_fixed_policies_and_skip() -> None:
    """Held-out tokens of a fixed policy = the mean of its <operator>_tokens over the held-out
    units (each unit is held out once per repeat); skip spends 0 and rescues 0."""
    frame = _costly()
    config = _config(policies=("retry", "skip", "best_fixed"), token_budget=10.0)
    doc = analyze(validate_profiles(frame), config)
    rows = doc["cells"]["m|t"]["honest"]["all_failures"]
    assert rows["retry"]["tokens"]["mean"] == pytest.approx(frame["retry_tokens"].mean())
    assert rows["retry"]["spend_vs_retry"] == pytest.approx(1.0)
    assert rows["skip"]["tokens"]["mean"] == 0.0 and rows["skip"]["mean"] == 0.0
    assert rows["skip"]["spend_vs_retry"] == 0.0 and rows["skip"]["budget_status"] == "within"
    # At 10x retry every operator is affordable: the best fixed operator is the best rescuer
    # (sparse_steer, 0.4 on average), and its spend is that operator's mean tokens.
    best = frame[list(PAPER_OPERATORS)].mean().idxmax()
    assert rows["best_fixed"]["tokens"]["mean"] == pytest.approx(frame[f"{best}_tokens"].mean())
    # The same accounting unit by unit, repeat by repeat.
    table, resolved = prepare(validate_profiles(frame), config)
    held = cross_fit(unit_arrays(table, resolved), resolved)
    assert np.array_equal(held["retry"].tokens, np.tile(frame["retry_tokens"], (2, 1)))
    assert not held["skip"].tokens.any() and not held["skip"].rescue.any()


def test_oracle_spends_on_the_cheapest_best_operator_and_nothing_on_hopeless_units() -> None:
    frame = _costly()
    doc = analyze(validate_profiles(frame), _config(policies=("retry",)))
    oracle = doc["cells"]["m|t"]["honest"]["all_failures"]["oracle"]
    rates = frame[list(PAPER_OPERATORS)].to_numpy()
    tokens = frame[[f"{op}_tokens" for op in PAPER_OPERATORS]].to_numpy()
    top = rates.max(axis=1)
    cheapest = np.where(rates == top[:, None], tokens, np.inf).min(axis=1)
    expected = np.where(top > 0, cheapest, 0.0).mean()
    assert oracle["tokens"]["mean"] == pytest.approx(expected)
    assert oracle["mean"] == pytest.approx(top.mean())


@pytest.mark.parametrize("router", [RidgeRouter, GradientBoostedRouter])
@pytest.mark.parametrize("budget", [0.0, 0.5, 1.0, 1.5, 4.0])
def test_cost_weight_is_the_smallest_meeting_the_budget_on_training_units(router, budget) -> None:
    frame = _costly()
    X, R = frame[FEATURES], frame[list(PAPER_OPERATORS)]
    tokens = frame[[f"{op}_tokens" for op in PAPER_OPERATORS]].to_numpy()
    fitted = router(FEATURES, PAPER_OPERATORS, token_budget=budget).fit(X, R, tokens=tokens)
    spend = _spend(fitted, X, tokens)
    assert fitted.budget_tokens_ == pytest.approx(budget * frame["retry_tokens"].mean())
    assert spend == pytest.approx(fitted.train_spend_)
    assert spend <= fitted.budget_tokens_ + 1e-9
    if fitted.lambda_ > 0:  # a little less weight spends over the budget
        lighter = policy_from_params(json.loads(json.dumps(to_jsonable(_params(fitted)))))
        lighter.lambda_ = fitted.lambda_ * (1 - 1e-6)
        lighter.default_index_ = _default(lighter, R)
        assert _spend(lighter, X, tokens) > fitted.budget_tokens_
    if budget == 0.0:
        assert set(fitted.predict(X)) == {SKIP}


def _params(estimator):
    from lm_failtrace.analysis import policy_to_params

    return policy_to_params(estimator)


def _default(router, R: pd.DataFrame) -> int:
    from lm_failtrace.analysis._cost import default_choice

    return default_choice(R.mean().to_numpy(), np.asarray(router.cost_), router.lambda_)


def _spend(router, X: pd.DataFrame, tokens: np.ndarray) -> float:
    index = router.route_index(X)
    rows = np.arange(len(X))
    return float(np.where(index < tokens.shape[1], tokens[rows, np.minimum(index, 4)], 0.0).mean())


def test_routers_and_best_fixed_at_the_budget() -> None:
    frame = _costly()
    X, R = frame[FEATURES], frame[list(PAPER_OPERATORS)]
    tokens = frame[[f"{op}_tokens" for op in PAPER_OPERATORS]].to_numpy()
    assert BestFixed(PAPER_OPERATORS, token_budget=1.0).fit(X, R, tokens).operator_ == "retry"
    assert BestFixed(PAPER_OPERATORS, token_budget=1.6).fit(X, R, tokens).operator_ == (
        "dense_steer"
    )
    assert BestFixed(PAPER_OPERATORS, token_budget=0.5).fit(X, R, tokens).operator_ == SKIP
    # Without token counts nothing changes: no cost state, no skip.
    plain = RidgeRouter(FEATURES, PAPER_OPERATORS).fit(X, R)
    assert plain.cost_ is None and plain.lambda_ is None and SKIP not in set(plain.predict(X))
    # At 1x retry's spend the router skips the units it expects nothing from and spends the
    # savings on sparse_steer where it rescues; at 4x it needs no weight at all.
    routes = RidgeRouter(FEATURES, PAPER_OPERATORS).fit(X, R, tokens=tokens).predict(X)
    assert {SKIP, "dense_steer"} <= set(routes)
    rich = RidgeRouter(FEATURES, PAPER_OPERATORS, token_budget=4.0).fit(X, R, tokens=tokens)
    assert rich.lambda_ == 0.0


def test_selection_passes_over_policies_over_the_budget() -> None:
    frame = _costly(400)
    doc = analyze(validate_profiles(frame), FAST)
    section = doc["cells"]["m|t"]
    rows, selection, budget = (section[k] for k in ("honest", "selection", "budget"))
    rows = rows["all_failures"]
    assert budget["applied"] and budget["budget_tokens"] == pytest.approx(
        frame["retry_tokens"].mean()
    )
    for name, row in rows.items():
        over = row["over_budget"]
        assert over["mean"] == pytest.approx(row["tokens"]["mean"] - budget["budget_tokens"])
        if row["budget_status"] == "over":
            assert name in budget["over_budget"] or name == "oracle"
            assert name != selection["selected"]
    assert rows["paper_rule"]["budget_status"] == "over"  # it routes to sparse_steer often
    assert selection["budget"]["excluded_over_budget"] == ["paper_rule"]
    assert selection["selected"] == "ridge_router"
    assert rows["ridge_router"]["budget_status"] in ("within", "at_budget")
    assert selection["margin_over_best_fixed"]["ci_low"] > 0
    # The frontier is ordered by held-out spend and no policy on it is beaten for less.
    spends = [rows[p]["tokens"]["mean"] for p in budget["frontier"]]
    assert spends == sorted(spends)
    text = analysis_text(doc)
    assert "Token budget: 1 x always-retry" in text and "OVER" in text
    assert "at the token budget (1x always-retry" in " ".join(doc["verdicts"])
    # A larger budget lets the costly policies compete.
    rich = analyze(validate_profiles(frame), _config(token_budget=4.0))
    assert rich["cells"]["m|t"]["selection"]["budget"]["excluded_over_budget"] == []


def test_a_table_without_token_columns_still_analyses_and_says_so() -> None:
    frame = _costly().drop(columns=[f"{op}_tokens" for op in PAPER_OPERATORS])
    doc = analyze(validate_profiles(frame), _config(token_budget=0.5))
    section = doc["cells"]["m|t"]
    assert section["budget"] == {
        "token_budget": 0.5,
        "applied": False,
        "note": section["budget"]["note"],
    }
    assert "no token budget applied" in section["budget"]["note"]
    assert section["selection"]["budget"] == {"applied": False}
    assert all("tokens" not in row for row in section["honest"]["all_failures"].values())
    assert "Token budget: not applied" in analysis_text(doc)
    params = fit_router(validate_profiles(frame), _config())
    assert params["budget"]["applied"] is False
    assert router_params(params)["token_budget_applied"] == "false"


def test_deployed_router_carries_its_budget_and_may_skip() -> None:
    frame = _costly(400)
    params = fit_router(validate_profiles(frame), _config(token_budget=1.0))
    params = json.loads(json.dumps(to_jsonable(params), allow_nan=False))
    assert params["policy"] == "ridge_router"
    assert params["budget"]["token_budget"] == 1.0 and params["budget"]["applied"]
    lam = params["per_task"]["t"]["state"]["lambda_"]
    assert lam > 0 and params["budget"]["lambda_per_task"] == {"t": lam}
    assert params["config"]["token_budget"] == 1.0
    routes = load_router(params).predict(frame)
    assert SKIP in set(routes)
    logged = router_params(params)
    assert logged["token_budget"] == "1.0" and float(logged["lambda.t"]) == pytest.approx(lam)
    assert float(logged["lambda.pooled"]) == pytest.approx(params["budget"]["lambda_pooled"])


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), "1", True])
def test_token_budget_errors_name_the_parameter(bad) -> None:
    with pytest.raises(InputError) as info:
        AnalysisConfig(token_budget=bad).check()
    assert info.value.parameter == "token_budget"
    assert "token_budget" in str(info.value)


def test_operator_named_skip_is_refused() -> None:
    with pytest.raises(InputError) as info:
        AnalysisConfig(operators=("retry", SKIP)).check()
    assert info.value.parameter == "operators"


def test_cli_token_budget_flag(tmp_path) -> None:
    path = tmp_path / "costly.csv"
    _costly().to_csv(path, index=False)
    base = ["analyze", str(path), "--repeats", "1", "--folds", "3"]
    bad = CliRunner().invoke(main, [*base, "--token-budget", "-1"])
    assert bad.exit_code == 2 and "--token-budget" in bad.output, bad.output
    assert "Traceback" not in bad.output
    good = CliRunner().invoke(main, [*base, "--token-budget", "2", "--json"])
    assert good.exit_code == 0, good.output
    doc = json.loads(good.stdout)
    assert doc["config"]["token_budget"] == 2.0
    assert doc["cells"]["m|t"]["budget"]["budget_tokens"] == pytest.approx(
        2 * pd.read_csv(path)["retry_tokens"].mean()
    )


def test_a_router_logged_before_cost_weights_still_loads() -> None:
    """Params without the cost state (older routers) load as rescue-only routers."""
    from lm_failtrace.analysis import policy_to_params

    frame = _costly()
    X, R = frame[FEATURES], frame[list(PAPER_OPERATORS)]
    router = RidgeRouter(FEATURES, PAPER_OPERATORS).fit(X, R)
    params = json.loads(json.dumps(to_jsonable(policy_to_params(router))))
    for key in ("cost_", "lambda_", "budget_tokens_", "train_spend_"):
        del params["state"][key]
    for key in ("token_budget", "random_state"):
        del params["params"][key]
    assert policy_from_params(params).predict(X).tolist() == router.predict(X).tolist()
