"""`failtrace compare` on two real logged versions: the bundled ancestor (v1) and specialist (v2).

Each model is recorded through lm-eval, repaired with the black-box operators, and logged to a real
`mlflow server` as a version of one registered model; the comparison then runs against the server
as a user would, and lands on version 2's run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_failtrace import AnalysisConfig, RepairConfig, log_failure_landscape, repair_run, run_eval
from lm_failtrace.demo import doc_indices
from lm_failtrace.models import tiny_model_path
from lm_failtrace.record.tasks import tasks_dir

MODEL = "tiny-pair"
TASK = "failtrace_arith"


def _record_repair_log(role: str, folder: Path, tracking_uri: str) -> str:
    """Record 12 problems of ``role``, repair them, log them as a version; returns the version."""
    runs = folder / "runs"
    run_eval([
        "--model", "failtrace-hf",
        "--model_args", f"pretrained={tiny_model_path(role)}",
        "--tasks", TASK, "--include_path", str(tasks_dir()),
        "--samples", json.dumps({TASK: doc_indices(2)}),
        "--batch_size", "64", "--device", "cpu",
        "--log_samples", "--output_path", str(runs),
    ])  # fmt: skip
    table = folder / "repaired.parquet"
    operators = ("retry", "budget", "temp_shift")  # black-box: no ancestor needed for either
    repair_run(runs, table, RepairConfig(operators=operators, trials=2, attempts=2))
    logged = log_failure_landscape(
        table,
        MODEL,
        checkpoint=tiny_model_path(role).as_uri(),
        tracking_uri=tracking_uri,
        config=AnalysisConfig(n_repeats=2),
        lm_eval_run=runs,
        progress=None,
    )
    return logged.model_version


@pytest.mark.slow
def test_compare_the_bundled_pair_logged_as_two_versions(mlflow_server, tmp_path, failtrace):
    versions = [
        _record_repair_log(role, tmp_path / role, mlflow_server)
        for role in ("ancestor", "specialist")
    ]
    assert versions == ["1", "2"]
    page = tmp_path / "compare.html"
    done = failtrace(
        "compare", "--model-name", MODEL, "--versions", "1", "2",
        "--tracking-uri", mlflow_server, "--json", "--log", "-o", str(page),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert (doc["old"]["label"], doc["new"]["label"]) == ("v1", "v2")
    section = doc["tasks"][TASK]
    moves = section["transitions"]
    n_old, n_new = section["old"]["n_units"], section["new"]["n_units"]
    assert n_old > 0 and n_new > 0
    # every failure unit of either side is paired, stopped failing, or started failing
    assert moves["n_paired"] + moves["n_stopped_failing"] == n_old
    assert moves["n_paired"] + moves["n_started_failing"] == n_new
    assert section["new"]["pass_at_k"] and section["old"]["pass_at_k"]  # from the lm-eval runs
    assert doc["logged"]["html"] == "compare/vs_v1/compare.html"
    html = page.read_text(encoding="utf-8")
    assert "v1" in html and "v2" in html and "<script>" not in html
