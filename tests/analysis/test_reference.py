"""The published protocol reproduces the paper's reference numbers exactly (docs/method.md 5)."""

from __future__ import annotations

import pandas as pd
from reference import assert_reference_section

from lm_failtrace.analysis import RegimeLabeler, analyze, route_batch

CELL = "sft0p6b|gsm8k"


def test_reference_regimes_routes_and_rescue(paper_table, fast):
    assert_reference_section(analyze(paper_table, fast, cell=CELL)["cells"][CELL])


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
