"""The published protocol reproduces the paper's reference numbers exactly (docs/method.md 5)."""

from __future__ import annotations

import pandas as pd

from lm_failtrace.analysis import RegimeLabeler, analyze, route_batch

CELL = "sft0p6b|gsm8k"


def test_reference_regimes_routes_and_rescue(paper_table, fast):
    doc = analyze(paper_table, fast, cell=CELL)
    section = doc["cells"][CELL]
    assert section["n_units"] == 196
    assert section["regimes"]["counts"] == {"resample": 118, "steerable": 67, "beyond_reach": 11}
    pub = section["published"]
    assert pub["n_steerable"] == 67
    assert pub["routes"] == {
        "retry": 0,
        "dense_steer": 26,
        "sparse_steer": 20,
        "local_temp": 17,
        "sparse_steer_random": 4,
    }
    assert pub["n_fallback"] == 4 and pub["fallback"] == "sparse_steer_random"
    assert round(pub["rescue"]["routed"], 3) == 0.463
    expected = {
        "dense_steer": 0.439,
        "sparse_steer": 0.430,
        "local_temp": 0.417,
        "sparse_steer_random": 0.390,
        "retry": 0.248,
    }
    assert {op: round(v, 3) for op, v in pub["rescue"]["always"].items()} == expected
    assert round(pub["margin_over_best_fixed"], 3) == 0.024
    assert pub["best_fixed_in_hindsight"] == "dense_steer"


def test_reference_through_the_estimators(paper_table):
    """The same numbers from the public estimators directly (no analysis document)."""
    table = paper_table.cell(CELL)
    labels = RegimeLabeler().fit_predict(table.frame)
    steer = table.frame.loc[labels == "steerable"]
    routes, fell_back = route_batch(steer)
    assert pd.Series(routes).value_counts().to_dict() == {
        "dense_steer": 26,
        "sparse_steer": 20,
        "local_temp": 17,
        "sparse_steer_random": 4,
    }
    assert fell_back.sum() == 4
    routed = [steer[op].iat[i] for i, op in enumerate(routes)]
    assert round(sum(routed) / len(routed), 3) == 0.463
