"""``failtrace profile`` through click's runner and as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from profile_fixtures import EXPECTED, ROLLOUTS_M, write_run

from lm_failtrace.cli import main
from lm_failtrace.profiles import ProfileSchema, read_profiles
from lm_failtrace.profiles.build import build_profiles


def test_summary_text(sidecar: Path) -> None:
    result = CliRunner().invoke(main, ["profile", str(sidecar)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "18 rollouts, 5 problems, 4 failure units in 2 cell(s)"
    assert lines[1].split() == [
        "cell", "problems", "N", "pass@1", "failure_units", "answer_entropy", "mode_share",
        "truncation_rate", "no_answer_rate", "mean_generated_tokens",
    ]  # fmt: skip
    assert set(lines[2]) == {"-", " "}  # the header's rule
    m_entropy = (EXPECTED[("m", "p0")]["answer_entropy"] + 0.75 + 0.0) / 3
    assert lines[3].split() == [
        "m|t", "4", "4", "0.500", "3", f"{m_entropy:.3f}", f"{(2 / 3 + 0.5 + 1) / 3:.3f}",
        f"{(1 / 3 + 0.5 + 0) / 3:.3f}", f"{0.5 / 3:.3f}", f"{(62 / 3 + 35.5 + 5) / 3:.3f}",
    ]  # fmt: skip
    unknown = "n/a"  # m2's backend reported no finish reasons or token counts
    assert lines[4].split() == [
        "m2|t",
        "1",
        "2",
        "0.000",
        "1",
        "1.000",
        "0.500",
        unknown,
        "0.000",
        unknown,
    ]
    assert f"reading {sidecar}" in result.stderr  # progress goes to stderr


def test_json_summary_and_outputs_round_trip(tmp_path: Path, sidecar: Path) -> None:
    expected = build_profiles(sidecar).frame
    for name in ("profile.csv", "profile.parquet"):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["profile", str(sidecar), "-o", str(out), "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["output"] == str(out)
        assert (summary["rollouts"], summary["problems"], summary["failure_units"]) == (18, 5, 4)
        m2 = summary["cells"][1]
        assert m2["cell"] == "m2|t" and m2["repeats"] == 2
        assert m2["truncation_rate"] is None  # unknown -> null in strict JSON
        back = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
        back["problem_id"] = back["problem_id"].astype(str)
        pd.testing.assert_frame_equal(back, expected)
        # The analysis stage reads it as a profile table with outcome features.
        schema = ProfileSchema(features=("answer_entropy", "mode_share"), operators=())
        table = read_profiles(out, schema)
        assert len(table) == 4 and table.cells == ["m|t", "m2|t"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_real_process_on_a_run_directory(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "m", ROLLOUTS_M)
    out = tmp_path / "profile.csv"
    cmd = [sys.executable, "-c", "from lm_failtrace.cli import main; main()", "profile"]
    done = subprocess.run(
        [*cmd, str(tmp_path / "runs"), "-o", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("16 rollouts, 4 problems, 3 failure units in 1 cell(s)")
    frame = pd.read_csv(out)
    assert frame["problem_id"].tolist() == ["p0", "p2", "p3"]
    assert frame["truncation_rate"].tolist() == pytest.approx([1 / 3, 0.5, 0.0])
    bad = subprocess.run(
        [*cmd, str(tmp_path / "missing"), "-o", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"Error: {tmp_path / 'missing'}: no such file or directory"
    assert not (tmp_path / "x.csv").exists()


def test_help_documents_inputs() -> None:
    result = CliRunner().invoke(main, ["profile", "--help"])
    assert result.exit_code == 0
    for word in ("rollouts_<task>_<ts>.jsonl", "generic rollout table", "--all-runs", "exit"):
        assert word.lower() in result.output.lower()


def test_unknown_output_type_is_refused_before_reading(sidecar: Path, tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(main, ["profile", str(sidecar), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{out}: unknown output type '.json'" in result.stderr
    assert "reading" not in result.stderr and not out.exists()
