"""Agreement with known labels (``AnalysisConfig(labels=...)``, ``failtrace analyze --labels``)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from lm_failtrace.analysis import AnalysisConfig, analyze, regime_labels, routing_map
from lm_failtrace.cli import main
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import validate_profiles
from lm_failtrace.report.tables import analysis_text

CLI_FAST = ["--repeats", "1", "--folds", "3"]


@pytest.fixture
def labelled(make_frame):
    """A synthetic table whose ``mechanism`` column is each unit's regime."""
    frame = make_frame(n_per_cell=60)
    frame["mechanism"] = regime_labels(validate_profiles(frame))
    return frame


def _assert_diagonal(agreement: dict) -> None:
    """Each label's units all sit in the column of the same name."""
    table = agreement["contingency"]
    for label, counts in zip(table["labels"], table["counts"], strict=True):
        nonzero = [c for c, n in zip(table["columns"], counts, strict=True) if n]
        assert nonzero == [label]


def test_labels_equal_to_regimes_agree_perfectly(labelled, fast):
    doc = analyze(labelled, replace(fast, labels="mechanism"))
    assert doc["config"]["labels"] == "mechanism"
    for section in [*doc["cells"].values(), doc["pooled"]]:
        lab = section["labels"]
        assert lab["column"] == "mechanism" and lab["n_missing"] == 0
        assert lab["n_units"] == section["n_units"] == sum(lab["counts"].values())
        assert lab["regime"]["ari"] == pytest.approx(1.0)
        _assert_diagonal(lab["regime"])
        assert "paper_rule" in lab["routes"]
        selected = section["selection"]["selected"]
        assert lab["selected_policy"] == selected and selected in lab["routes"]
        acc = lab["recoverability"]
        assert acc["classifier"] == section["recoverability"]["classifier"]
        assert acc["majority_rate"] == section["recoverability"]["majority_rate"]
    text = analysis_text(doc)
    assert "Known labels (column mechanism" in text and "labels x regimes (ARI 1.000)" in text


def test_routes_match_the_routing_map(labelled, fast):
    """Labels equal to the paper rule's batch routes agree with them exactly."""
    config = replace(fast, labels="route")
    routes = routing_map(labelled, fast)
    labelled["route"] = routes["route"].to_numpy()  # routing_map keeps row order within cells
    doc = analyze(labelled, config)
    for section in [*doc["cells"].values(), doc["pooled"]]:
        assert section["labels"]["routes"]["paper_rule"]["ari"] == pytest.approx(1.0)
        _assert_diagonal(section["labels"]["routes"]["paper_rule"])


def test_random_labels_agree_by_chance_only(make_frame, fast):
    frame = make_frame(n_per_cell=200)
    frame["mechanism"] = np.random.default_rng(1).choice(["a", "b", "c"], len(frame))
    lab = analyze(frame, replace(fast, labels="mechanism"))["pooled"]["labels"]
    assert abs(lab["regime"]["ari"]) < 0.02
    assert all(abs(r["ari"]) < 0.02 for r in lab["routes"].values())
    assert lab["recoverability"]["accuracy_mean"] < lab["recoverability"]["majority_rate"] + 0.05


def test_missing_label_values_are_left_out_and_counted(labelled, fast):
    labelled.loc[[0, 5, 61], "mechanism"] = None
    doc = analyze(labelled, replace(fast, labels="mechanism"))
    pooled = doc["pooled"]["labels"]
    assert pooled["n_missing"] == 3 and pooled["n_units"] == doc["pooled"]["n_units"] - 3
    assert "3 unit(s) without a label" in pooled["note"]
    assert doc["cells"]["m1|t1"]["labels"]["n_missing"] == 2
    assert "3 without a label left out" in analysis_text(doc)


def test_integer_codes_with_gaps_read_as_integers(tmp_path, make_frame, fast):
    frame = make_frame(n_per_cell=30)
    frame["mechanism"] = np.arange(len(frame)) % 3
    frame.loc[1, "mechanism"] = np.nan  # a CSV column of integer codes with a gap reads as float
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    lab = analyze(path, replace(fast, labels="mechanism"))["pooled"]["labels"]
    assert lab["counts"] == {"0": 30, "1": 29, "2": 30} and lab["n_missing"] == 1


def test_no_label_at_all_is_skipped(make_frame, fast):
    frame = make_frame(n_per_cell=30)
    frame["mechanism"] = None
    lab = analyze(frame, replace(fast, labels="mechanism"))["pooled"]["labels"]
    assert lab["skipped"] == "no unit has a label" and lab["n_missing"] == len(frame)


def test_missing_column_is_an_input_error(make_frame, fast):
    with pytest.raises(InputError) as info:
        analyze(make_frame(n_per_cell=30), replace(fast, labels="nope"))
    assert info.value.parameter == "labels" and info.value.column == "nope"
    with pytest.raises(InputError, match="empty label column"):
        AnalysisConfig(labels=" ").check()


def test_without_labels_there_is_no_section(make_frame, fast):
    doc = analyze(make_frame(n_per_cell=30), fast)
    assert doc["config"]["labels"] is None and "labels" not in doc["pooled"]


def test_cli_labels(tmp_path, labelled):
    path = tmp_path / "table.csv"
    labelled.to_csv(path, index=False)
    runner = CliRunner()
    result = runner.invoke(
        main, ["analyze", str(path), "--labels", "mechanism", "--json", *CLI_FAST]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["pooled"]["labels"]["regime"]["ari"] == pytest.approx(1.0)
    assert all("labels" in s for s in doc["cells"].values())
    text = runner.invoke(main, ["analyze", str(path), "--labels", "mechanism", *CLI_FAST])
    assert text.exit_code == 0 and "Label recoverability: CV accuracy" in text.stdout

    missing = runner.invoke(main, ["analyze", str(path), "--labels", "nope", *CLI_FAST])
    assert missing.exit_code == 2
    assert "--labels" in missing.stderr and "column 'nope'" in missing.stderr
