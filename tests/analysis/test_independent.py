"""An independent, loop-and-fraction re-computation of the published protocol agrees with ours."""

from __future__ import annotations

import statistics
from fractions import Fraction

import pytest

from lm_failtrace.analysis import analyze
from lm_failtrace.profiles import PAPER_OPERATORS, validate_profiles

MAPPING = {
    "spread": "dense_steer",
    "concentration": "sparse_steer",
    "logit_dispersion": "local_temp",
}


def _regime(row) -> str:
    """Regime with exact rational arithmetic (rates are k/20), no tolerance needed."""
    rates = {op: Fraction(round(row[op] * 20), 20) for op in PAPER_OPERATORS}
    best = max(v for op, v in rates.items() if op != "retry")
    if best - rates["retry"] >= Fraction(1, 20) and 1 - rates["retry"] >= Fraction(1, 2):
        return "steerable"
    return "beyond_reach" if best == 0 else "resample"


def _published(rows: list[dict]) -> tuple[dict, float, dict]:
    steer = [r for r in rows if _regime(r) == "steerable"]
    stats = {
        f: (statistics.fmean(r[f] for r in steer), statistics.pstdev(r[f] for r in steer))
        for f in MAPPING
    }
    routes, routed = {}, []
    for r in steer:
        best_f, best_z = None, 0.0
        for f, (mu, sd) in stats.items():
            z = (r[f] - mu) / sd if sd > 0 else 0.0
            if z > best_z:
                best_f, best_z = f, z
        op = MAPPING[best_f] if best_f else "sparse_steer_random"
        routes[op] = routes.get(op, 0) + 1
        routed.append(r[op])
    always = {op: statistics.fmean(r[op] for r in steer) for op in PAPER_OPERATORS}
    return routes, statistics.fmean(routed), always


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_published_protocol_matches_independent_computation(seed, make_frame, fast):
    frame = make_frame(n_per_cell=80, seed=seed)
    doc = analyze(validate_profiles(frame), fast)
    for cell, section in doc["cells"].items():
        rows = frame[frame["cell"] == cell].to_dict("records")
        counts = {g: 0 for g in ("steerable", "resample", "beyond_reach")}
        for r in rows:
            counts[_regime(r)] += 1
        assert section["regimes"]["counts"] == counts
        routes, routed, always = _published(rows)
        pub = section["published"]
        assert {k: v for k, v in pub["routes"].items() if v} == routes
        assert pub["rescue"]["routed"] == pytest.approx(routed, abs=1e-12)
        assert pub["rescue"]["always"] == pytest.approx(always, abs=1e-12)


def test_pooled_published_routes_within_each_cell(make_frame, fast):
    frame = make_frame(n_per_cell=80, seed=4)
    doc = analyze(validate_profiles(frame), fast)
    pooled = doc["pooled"]["published"]
    per_cell = [doc["cells"][c]["published"] for c in doc["cells"]]
    assert pooled["n_steerable"] == sum(p["n_steerable"] for p in per_cell)
    for op in PAPER_OPERATORS:
        assert pooled["routes"][op] == sum(p["routes"][op] for p in per_cell)
    weighted = sum(p["rescue"]["routed"] * p["n_steerable"] for p in per_cell)
    assert pooled["rescue"]["routed"] == pytest.approx(weighted / pooled["n_steerable"])
    assert "within each cell" in pooled["note"]
