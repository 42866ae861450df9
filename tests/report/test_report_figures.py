"""report.html's figures: plain-text labels (no mathtext), widths fitted to a 1400 px page, and the
numbers beside them (per-operator rescue and cost, the units table's integers)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lm_failtrace.analysis import AnalysisConfig, analyze
from lm_failtrace.datasets import paper_profiles
from lm_failtrace.report.html import render_report
from lm_failtrace.report.plots import (
    features_figure,
    frontier_figure,
    regime_mix_figure,
    report_figures,
    routing_figure,
)
from lm_failtrace.report.summary import best_operator, operator_summaries

#: Two ``$`` around an unknown command: mathtext would raise on it.
MATH = "m$\\frac{$"
PAGE = 1400


def _width(png: bytes) -> int:
    return Image.open(io.BytesIO(png)).size[0]


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(6)})
    frame["retry"] = rng.integers(0, 5, n) / 4
    frame[MATH] = rng.integers(0, 5, n) / 4
    frame["retry_tokens"] = 100.0 + rng.integers(0, 50, n)
    frame[f"{MATH}_tokens"] = 300.0 + rng.integers(0, 50, n)
    return frame


def test_operator_summaries_and_labels_with_dollars_draw(units: pd.DataFrame) -> None:
    rows = operator_summaries(units, ["retry", MATH], 0.95)
    assert [r.operator for r in rows] == ["retry", MATH]
    retry = rows[0]
    assert retry.rescue["mean"] == pytest.approx(units["retry"].mean())
    assert 0 <= retry.rescue["ci_low"] <= retry.rescue["mean"] <= retry.rescue["ci_high"] <= 1
    assert retry.tokens_per_trial == pytest.approx(units["retry_tokens"].mean())
    assert retry.tokens_per_rescue == pytest.approx(
        units["retry_tokens"].sum() / units["retry"].sum()
    )
    assert best_operator(rows) == max(rows, key=lambda r: r.rescue["mean"]).operator
    policies = [
        {"name": MATH, "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "tokens": 250.0,
         "tokens_low": 240.0, "tokens_high": 260.0, "selected": True},
        {"name": f"{MATH}2", "mean": 0.3, "ci_low": None, "ci_high": None, "tokens": 0.0},
    ]  # fmt: skip
    png = frontier_figure(rows, ["retry", MATH], f"cost {MATH}", policies, budget=120.0)
    assert png is not None and png.startswith(b"\x89PNG") and _width(png) <= PAGE
    mix = pd.DataFrame({"cell": [f"{MATH}|t", "b|t"], "regime": ["steerable", "resample"]})
    assert regime_mix_figure(mix).startswith(b"\x89PNG")


def test_panels_fit_the_page(units: pd.DataFrame) -> None:
    features = [f"f{i}" for i in range(6)]
    regimes = np.array(["steerable", "resample", "beyond_reach"] * 20, dtype=object)
    png = features_figure(units, features, regimes, MATH)
    assert png is not None and _width(png) <= PAGE
    width, height = Image.open(io.BytesIO(png)).size
    assert height < width  # six panels in two rows, not a strip
    z = units[features].add_prefix("z_").assign(route=["retry", MATH] * 30)
    png = routing_figure(z, features, {"retry": "C0", MATH: "C1"}, MATH)  # 15 pairs
    width, height = Image.open(io.BytesIO(png)).size
    assert width <= PAGE and height < 2 * width


def test_report_of_paper_cell_has_no_routing_map_for_a_fixed_policy() -> None:
    table = paper_profiles().cell("sft0p6b|gsm8k")
    config = AnalysisConfig(n_repeats=1)
    document = analyze(table, config)
    selected = document["cells"]["sft0p6b|gsm8k"]["selection"]["selected"]
    figures = report_figures(table, config, document)
    kinds = {f.kind for f in figures}
    assert {"frontier", "features"} <= kinds
    assert ("routing_map" in kinds) == (selected in ("paper_rule", "ridge_router"))
    frame = table.frame.assign(n_rollouts=16.0)  # counts as a CSV round trip leaves them
    page = render_report(document, frame, figures, title="t")
    assert "16.000" not in page and ">16<" in page
    assert page.count("sft0p6b|gsm8k") < 10  # the cell is named per section, not per row
    if "routing_map" not in kinds:
        assert f"No routing map: the selected policy, {selected}," in page
