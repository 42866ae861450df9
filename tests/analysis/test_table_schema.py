"""Analysis defaults to the columns the table holds; explicit columns narrow it (issue 8 item 4)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lm_failtrace.analysis import AnalysisConfig, analyze, fit_router
from lm_failtrace.cli import main
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import (
    ALL_OPERATORS,
    LOGIT_FEATURES,
    OUTCOME_FEATURES,
    PAPER_OPERATORS,
    ProfileSchema,
    validate_profiles,
    write_profiles,
)

FAST = {"n_repeats": 1, "n_folds": 3, "n_bootstrap": 2, "k_range": (2, 3)}


def _repaired(operators: tuple[str, ...] = ALL_OPERATORS, n: int = 40) -> pd.DataFrame:
    """A table like ``failtrace repair`` writes: outcome features, rescue rates, tokens."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "cell": "ckpt|failtrace_arith",
            "model": "ckpt",
            "task": "failtrace_arith",
            "problem_id": [str(i) for i in range(n)],
            "answer_entropy": rng.uniform(0, 1, n),
            "mode_share": rng.uniform(0.2, 1, n),
            "truncation_rate": rng.uniform(0, 1, n),
        }
    )
    for op in operators:
        frame[op] = rng.integers(0, 5, n) / 4
        frame[f"{op}_tokens"] = rng.uniform(20, 200, n)
    return frame


def test_analyze_parquet_without_operators_analyses_every_operator_it_holds(tmp_path):
    path = write_profiles(
        _repaired(),
        tmp_path / "repaired.parquet",
        ProfileSchema(features=OUTCOME_FEATURES, operators=ALL_OPERATORS),
    )
    result = CliRunner().invoke(
        main, ["analyze", str(path), "--json", "--repeats", "1", "--folds", "3"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["config"]["operators"] == list(ALL_OPERATORS)
    assert doc["config"]["features"] == list(OUTCOME_FEATURES)
    assert doc["config"]["fallback"] == "sparse_steer_random" and doc["config"]["notes"] == []
    published = doc["cells"]["ckpt|failtrace_arith"]["published"]
    assert set(published["rescue"]["always"]) == set(ALL_OPERATORS)


def test_resolution_keeps_what_the_table_holds():
    table = ProfileSchema(features=(*LOGIT_FEATURES, *OUTCOME_FEATURES), operators=ALL_OPERATORS)
    config = AnalysisConfig().resolved(table)
    assert (config.features, config.operators) == (table.features, table.operators)
    assert config.fallback == "sparse_steer_random" and config.notes == ()
    # the paper's table: its three features and five operators, i.e. the paper's protocol
    paper = AnalysisConfig().resolved(ProfileSchema(LOGIT_FEATURES, PAPER_OPERATORS))
    assert (paper.features, paper.operators) == (LOGIT_FEATURES, PAPER_OPERATORS)
    # resolving a resolved configuration changes nothing
    assert paper.resolved(ProfileSchema(LOGIT_FEATURES, ALL_OPERATORS)) == paper


def test_features_whose_operator_is_absent_are_dropped_and_said():
    table = ProfileSchema(features=OUTCOME_FEATURES, operators=("retry", "sparse_steer"))
    config = AnalysisConfig().resolved(table)
    assert config.features == ("answer_entropy", "mode_share")
    assert config.fallback == "retry"
    assert any("'truncation_rate' dropped" in n and "'budget'" in n for n in config.notes)
    assert any("fallback 'retry'" in n for n in config.notes)
    assert config.to_dict()["notes"] == list(config.notes)


def test_explicit_columns_stay_errors():
    table = ProfileSchema(features=OUTCOME_FEATURES, operators=("retry", "sparse_steer"))
    with pytest.raises(InputError, match="'budget'") as info:
        AnalysisConfig(features=("truncation_rate",)).resolved(table)
    assert info.value.parameter == "features"
    with pytest.raises(InputError, match="'dense_steer' is not among") as info:
        AnalysisConfig(fallback="dense_steer").resolved(table)
    assert info.value.parameter == "fallback"
    with pytest.raises(InputError, match="no feature to route with") as info:
        AnalysisConfig().resolved(ProfileSchema(("truncation_rate",), ("retry",)))
    assert info.value.parameter == "features"


def test_narrowed_columns_reach_the_document_and_the_router():
    table = validate_profiles(_repaired(operators=("retry", "sparse_steer", "budget")))
    config = AnalysisConfig(operators=("retry", "budget"), **FAST)
    doc = analyze(table, config)
    assert doc["config"]["operators"] == ["retry", "budget"]
    assert doc["config"]["features"] == ["answer_entropy", "truncation_rate"]  # mode_share dropped
    assert any("'mode_share' dropped" in note for note in doc["config"]["notes"])
    router = fit_router(table, AnalysisConfig(**FAST))
    assert router["features"] == list(OUTCOME_FEATURES)
    assert router["operators"] == ["retry", "sparse_steer", "budget"]


def test_the_text_output_says_what_was_left_out(tmp_path):
    path = tmp_path / "repaired.csv"
    _repaired(operators=("retry", "sparse_steer", "budget")).to_csv(path, index=False)
    result = CliRunner().invoke(
        main, ["analyze", str(path), "--operators", "retry,budget", "--repeats", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "Features: answer_entropy, truncation_rate" in result.stdout
    assert "Operators: retry, budget (fallback retry)" in result.stdout
    assert "Note: feature 'mode_share' dropped" in result.stdout
