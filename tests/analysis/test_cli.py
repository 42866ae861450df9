"""``failtrace analyze`` through click's runner, and once through the real console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from reference import assert_reference_section

from lm_failtrace.cli import main

FAST = ["--repeats", "1", "--folds", "3"]


@pytest.fixture
def csv_path(tmp_path, make_frame) -> Path:
    path = tmp_path / "profiles.csv"
    make_frame(n_per_cell=40).to_csv(path, index=False)
    return path


def test_json_document(csv_path):
    result = CliRunner().invoke(main, ["analyze", str(csv_path), "--json", *FAST])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["cells"]) == {"m1|t1", "m1|t2", "m2|t1"}
    assert doc["config"]["n_repeats"] == 1 and doc["config"]["n_folds"] == 3


def test_text_tables_and_plots(csv_path, tmp_path):
    out = tmp_path / "figs"
    result = CliRunner().invoke(
        main, ["analyze", str(csv_path), "--cell", "m1|t2", "--plot", str(out), *FAST]
    )
    assert result.exit_code == 0, result.output
    assert "== cell m1|t2 (40 failure units) ==" in result.stdout
    assert "Honest protocol" in result.stdout and "Verdicts:" in result.stdout
    pngs = sorted(p.name for p in out.iterdir())  # report.html's figures of the cell
    assert {"frontier_m1_t2.png", "features_m1_t2.png"} <= set(pngs)
    assert all((out / p).read_bytes().startswith(b"\x89PNG") for p in pngs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cell", "nope|x"], "unknown cell 'nope|x'"),
        (["--features", "spread,bogus"], "--features: feature 'bogus' has no operator"),
        (["--features", "spread,bogus", "--map", "bogus=retry"], "column 'bogus'"),
        (["--map", "spread"], "not FEATURE=OPERATOR"),
        (
            ["--operators", "retry,sparse_steer,sparse_steer_random,local_temp,dense_steer,warp"],
            "column 'warp'",
        ),
        (["--features", "logit", "--operators", "retry,sparse_steer"], "add it to --operators"),
        (["--operators", "sparse_steer,dense_steer"], "--operators: must include 'retry'"),
    ],
)
def test_bad_input_exits_2(csv_path, args, message):
    result = CliRunner().invoke(main, ["analyze", str(csv_path), *args, *FAST])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_missing_file_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_help():
    result = CliRunner().invoke(main, ["analyze", "--help"])
    assert result.exit_code == 0
    for option in ("--cell", "--features", "--operators", "--json", "--plot", "--folds", "--seed"):
        assert option in result.stdout


def test_console_script_reproduces_the_paper_on_all_cells(paper_csv):
    """Acceptance: the installed `failtrace` script with default settings on the paper's data."""
    exe = shutil.which("failtrace", path=str(Path(sys.executable).parent))
    assert exe is not None, "the failtrace console script is not installed in this environment"
    proc = subprocess.run(
        [exe, "analyze", str(paper_csv), "--json"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "[analyze]" in proc.stderr  # progress goes to stderr, the document to stdout
    doc = json.loads(proc.stdout)
    assert set(doc["cells"]) == {
        "sft0p6b|gsm8k",
        "sft1p7b|cruxeval",
        "grpo1p7b|gpqa",
        "sft4b|gsm8k",
    }
    pub = doc["cells"]["sft0p6b|gsm8k"]["published"]
    assert round(pub["rescue"]["routed"], 3) == 0.463
    assert pub["routes"]["dense_steer"] == 26 and pub["n_fallback"] == 4
    for section in doc["cells"].values():
        assert section["honest"]["all_failures"]["best_fixed"]["n_units"] == section["n_units"]
        assert "k" in section["clustering"]
    assert doc["pooled"]["clustering"]["k"] >= 2
    bad = subprocess.run(
        [exe, "analyze", str(paper_csv), "--cell", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "unknown cell" in bad.stderr


def test_example_paper_reproduces_the_reference_numbers():
    """`--example paper` analyses the bundled table: docs/method.md section 5's numbers, exactly."""
    result = CliRunner().invoke(main, ["analyze", "--example", "paper", "--json", *FAST])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["cells"]) == {
        "sft0p6b|gsm8k",
        "sft1p7b|cruxeval",
        "grpo1p7b|gpqa",
        "sft4b|gsm8k",
    }
    assert_reference_section(doc["cells"]["sft0p6b|gsm8k"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "missing PROFILES"),
        (["profiles.csv", "--example", "paper"], "not both"),
        (["--example", "nope"], "Invalid value for '--example'"),
    ],
)
def test_profiles_xor_example_is_a_usage_error(args, message):
    result = CliRunner().invoke(main, ["analyze", *args])
    assert result.exit_code == 2, result.output
    assert "Usage: " in result.output and message in result.output
