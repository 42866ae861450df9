"""Intervals that respect their scale, "too few units", and verdicts worded from one outcome."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_failtrace.analysis import AnalysisConfig, analyze
from lm_failtrace.analysis._honest import HeldOut, paired_difference, select_policy, summarize
from lm_failtrace.analysis._stats import (
    DIFFERENCE,
    MIN_UNITS_FOR_INTERVAL,
    mean_ci,
    proportion_ci,
)
from lm_failtrace.analysis._verdicts import section_verdicts
from lm_failtrace.cli import main
from lm_failtrace.formatting import to_jsonable
from lm_failtrace.profiles import validate_profiles
from lm_failtrace.report.tables import analysis_text


def _extremes(n: int) -> dict[str, np.ndarray]:
    one_up = np.zeros(n)
    one_up[0] = 1.0
    return {
        "all ones": np.ones(n),
        "all zeros": np.zeros(n),
        "one at 1, the rest at 0": one_up,
        "one at 0, the rest at 1": 1.0 - one_up,
        "half and half": np.arange(n) % 2.0,
    }


@pytest.mark.parametrize("n", [10, 11, 13, 20, 50])
@pytest.mark.parametrize("case", list(_extremes(10)))
def test_a_rate_interval_stays_in_0_1_at_the_extremes(n, case):
    values = _extremes(n)[case]
    row = mean_ci(values, 0.95)
    assert row["n_units"] == n and row["too_few"] is False
    assert 0.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0
    assert row["mean"] == pytest.approx(values.mean())
    if values.min() == values.max():
        assert row["ci_low"] == row["ci_high"] == row["mean"]
        assert "same value" in row["note"]
    else:
        assert row["ci_high"] > row["ci_low"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 20), min_size=MIN_UNITS_FOR_INTERVAL, max_size=50),
    st.integers(0, 2**31 - 1),
)
def test_a_rate_interval_never_leaves_0_1(numerators, seed):
    values = np.asarray(numerators) / 20
    row = mean_ci(values, 0.95, random_state=seed)
    assert 0.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-4, 4), min_size=MIN_UNITS_FOR_INTERVAL, max_size=50))
def test_a_difference_interval_never_leaves_minus_1_1(numerators):
    row = mean_ci(np.asarray(numerators) / 4, 0.95, bounds=DIFFERENCE)
    assert -1.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0


def test_the_bootstrap_is_seeded_and_the_two_resampling_paths_agree():
    rng = np.random.default_rng(3)
    few_distinct = rng.integers(0, 5, 400) / 4  # multinomial counts of 5 distinct values
    many_distinct = few_distinct + rng.uniform(0, 1e-6, 400)  # indices into 400 units
    a, b = mean_ci(few_distinct, 0.95, 1), mean_ci(few_distinct, 0.95, 1)
    assert a == b
    c = mean_ci(many_distinct, 0.95, 1)
    assert c["ci_low"] == pytest.approx(a["ci_low"], abs=0.01)
    assert c["ci_high"] == pytest.approx(a["ci_high"], abs=0.01)


def test_the_t_interval_that_left_0_1_now_stays_inside():
    """The rescue rate once printed as 0.750 [0.212, 1.288]: a skewed rate near 1."""
    values = np.r_[np.ones(8), 0.0, 0.5, 1.0, 1.0, 0.0, 1.0]
    row = mean_ci(values, 0.95)
    assert row["ci_high"] <= 1.0 and row["ci_low"] >= 0.0


@pytest.mark.parametrize("n", [0, 1, 3, MIN_UNITS_FOR_INTERVAL - 1])
def test_fewer_than_ten_units_get_no_interval(n):
    for row in (mean_ci(np.zeros(n), 0.95), proportion_ci(0, n, 0.95)):
        assert row["ci_low"] is None and row["ci_high"] is None
        assert row["too_few"] is True
        assert "too few units" in row["note"]
        assert row["n_units"] == n


def test_wilson_interval_of_a_share():
    assert proportion_ci(0, 10, 0.95)["ci_low"] == 0.0
    assert proportion_ci(0, 10, 0.95)["ci_high"] == pytest.approx(1.959964**2 / (10 + 1.959964**2))
    assert proportion_ci(10, 10, 0.95)["ci_high"] == 1.0
    row = proportion_ci(67, 196, 0.95)
    assert (round(row["ci_low"], 3), round(row["ci_high"], 3)) == (0.279, 0.411)
    assert row["method"] == "wilson" and row["mean"] == pytest.approx(67 / 196)


def _small_table(make_frame, n: int):
    return validate_profiles(make_frame(cells=("m|t",), n_per_cell=n), source="small")


def test_too_few_units_in_the_document_and_the_text(make_frame, fast):
    doc = analyze(_small_table(make_frame, 6), fast)
    section = doc["cells"]["m|t"]
    for pop in ("steerable_hard", "all_failures"):
        for row in section["honest"][pop].values():
            if isinstance(row, dict) and "mean" in row:
                assert row["too_few"] is True and row["ci_low"] is None
    for share in section["regimes"]["intervals"].values():
        assert share["too_few"] is True and share["ci_low"] is None
    assert all(v["outcome"] == "too_few" for v in section["verdicts"])
    json.dumps(to_jsonable(doc), allow_nan=False)
    text = analysis_text(doc)
    assert "too few units" in text
    assert "[0.000, 0.000]" not in text
    assert " beats " not in text


def test_too_few_units_in_the_cli_text(tmp_path, make_frame):
    path = tmp_path / "small.csv"
    make_frame(cells=("m|t",), n_per_cell=7).to_csv(path, index=False)
    result = CliRunner().invoke(main, ["analyze", str(path), "--repeats", "1", "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert "too few units" in result.stdout
    assert "[0.000, 0.000]" not in result.stdout


def test_honest_rows_carry_the_interval_keys(make_frame, fast):
    doc = analyze(_small_table(make_frame, 40), fast)
    for pop in ("steerable_hard", "all_failures"):
        for row in doc["cells"]["m|t"]["honest"][pop].values():
            assert {"mean", "ci_low", "ci_high", "n_units", "too_few", "method", "note"} <= set(row)
    row = doc["cells"]["m|t"]["honest"]["all_failures"]["paper_rule"]
    assert row["too_few"] is False and 0.0 <= row["ci_low"] <= row["ci_high"] <= 1.0


# --- verdicts -------------------------------------------------------------------------------

TWO = AnalysisConfig(policies=("paper_rule", "best_fixed"))


def _held(rule: np.ndarray, fixed: np.ndarray) -> dict[str, HeldOut]:
    return {
        "paper_rule": HeldOut(rule[None, :], None),
        "best_fixed": HeldOut(fixed[None, :], None),
    }


def _section(held: dict[str, HeldOut], steerable: int = 0) -> dict:
    n = len(held["paper_rule"].rescue[0])
    return {
        "n_units": n,
        "regimes": {"counts": {"steerable": steerable, "resample": n - steerable}},
        "honest": {"all_failures": summarize(held, TWO), "steerable_hard": summarize(None, TWO)},
        "selection": select_policy(held, TWO),
        "published": {"margin_over_best_fixed": 0.024},
    }


def _verdicts(rule: np.ndarray, fixed: np.ndarray) -> tuple[dict, list[dict]]:
    held = _held(rule, fixed)
    section = _section(held)
    held_by_pop = {"all_failures": held, "steerable_hard": None}
    return section, section_verdicts(section, held_by_pop, TWO)


def test_a_lead_of_0_001_whose_interval_covers_0_is_a_tie_never_beats():
    n = 40
    fixed = np.full(n, 0.5)
    rule = fixed + np.where(np.arange(n) % 2 == 0, 0.1, -0.1) + 0.001
    section, verdicts = _verdicts(rule, fixed)
    assert section["selection"]["selected"] == "paper_rule"
    by_kind = {v["kind"]: v for v in verdicts}
    rule_v, chosen = by_kind["rule_vs_best_fixed"], by_kind["selection"]
    assert rule_v["outcome"] == chosen["outcome"] == "tie"
    assert rule_v["difference"]["ci_low"] < 0 < rule_v["difference"]["ci_high"]
    assert rule_v["difference"]["mean"] == pytest.approx(0.001)
    # One comparison, one set of numbers: the selection's margin is the rule-vs-fixed difference.
    assert chosen["difference"] is rule_v["difference"]
    assert "not distinguishable" in rule_v["text"] and "not distinguishable" in chosen["text"]
    assert all("beats" not in v["text"] for v in verdicts)
    assert "does NOT beat" in rule_v["text"]
    assert by_kind["published_vs_cross_validated"]["outcome"] == "too_few"


def test_beats_only_when_the_interval_lies_above_0():
    n = 40
    fixed = np.full(n, 0.4)
    rule = fixed + np.where(np.arange(n) % 2 == 0, 0.15, 0.05)
    _, verdicts = _verdicts(rule, fixed)
    rule_v = verdicts[0]
    assert rule_v["outcome"] == "better" and rule_v["difference"]["ci_low"] > 0
    assert "beats the cross-validated best fixed operator" in rule_v["text"]
    _, verdicts = _verdicts(fixed, rule)
    assert verdicts[0]["outcome"] == "worse"
    assert "does NOT beat" in verdicts[0]["text"] and "beats" not in verdicts[0]["text"]


def test_a_reversed_comparison_reads_the_same_numbers():
    """best_fixed selected: its margin over the rule is the rule-vs-fixed difference, negated."""
    n = 40
    fixed = np.full(n, 0.5)
    rule = fixed + np.where(np.arange(n) % 2 == 0, 0.1, -0.1) - 0.001
    _, verdicts = _verdicts(rule, fixed)
    rule_v, chosen = verdicts[0], verdicts[1]
    assert chosen["policy"] == "best_fixed" and chosen["versus"] == "paper_rule"
    assert chosen["difference"]["mean"] == pytest.approx(-rule_v["difference"]["mean"])
    assert chosen["difference"]["ci_low"] == pytest.approx(-rule_v["difference"]["ci_high"])
    assert rule_v["outcome"] == chosen["outcome"] == "tie"


def test_too_few_units_is_said_not_beaten():
    fixed = np.full(6, 0.1)
    _, verdicts = _verdicts(fixed + 0.3, fixed)
    assert [v["outcome"] for v in verdicts] == ["too_few", "too_few", "too_few"]
    assert "too few units" in verdicts[0]["text"] and "beats" not in verdicts[0]["text"]


def test_paired_difference_keys():
    n = 12
    held = _held(np.linspace(0, 1, n), np.full(n, 0.5))
    diff = paired_difference(held, "paper_rule", "best_fixed", TWO)
    assert set(diff) == {
        "policy",
        "versus",
        "mean",
        "ci_low",
        "ci_high",
        "n_units",
        "too_few",
        "method",
        "note",
        "outcome",
    }
    assert -1.0 <= diff["ci_low"] <= diff["ci_high"] <= 1.0


def test_the_selected_policy_line_prints_each_margin_once(make_frame):
    config = AnalysisConfig(
        policies=("paper_rule", "best_fixed"), n_repeats=2, n_folds=3, n_bootstrap=3
    )
    doc = analyze(_small_table(make_frame, 40), config)
    line = next(x for x in analysis_text(doc).splitlines() if x.startswith("Selected policy"))
    assert line.count(" over ") == 1
    verdicts = doc["cells"]["m|t"]["verdicts"]
    assert doc["verdicts"] == [f"m|t: {v['text']}" for v in verdicts]
    assert {v["kind"] for v in verdicts} == {
        "rule_vs_best_fixed",
        "selection",
        "published_vs_cross_validated",
    }
