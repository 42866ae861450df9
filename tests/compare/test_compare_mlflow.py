"""``failtrace compare`` against a real MLflow store: two logged versions of one registered model.

Version 1 is the paper's cell sft0p6b|gsm8k and version 2 its cell sft4b|gsm8k, both relabelled as
one model and task (sft4b's 59 failure units are all among sft0p6b's 196), so the pairing is
known: 59 paired, 137 stopped failing, none started.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.cli import main
from lm_failtrace.datasets import paper_profiles
from lm_failtrace.tracking import log_failure_landscape

MODEL = "cmp-sft"
FAST = ["--repeats", "2"]


def _version_table(cell: str):
    frame = paper_profiles().frame
    frame = frame.loc[frame["cell"] == cell].copy()
    return frame.assign(model=MODEL, cell=f"{MODEL}|gsm8k")


def _lm_eval_run(folder: Path) -> Path:
    """A minimal lm-eval output folder: only results_*.json with the task's pass@k."""
    results = folder / MODEL / "results_2026-01-01T00-00-00.json"
    results.parent.mkdir(parents=True)
    doc = {"results": {"gsm8k": {"pass@1,none": 0.61, "pass@16,none": 0.9}}, "config": {}}
    results.write_text(json.dumps(doc))
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two versions of MODEL logged with `failtrace log`'s library call; aliases on both."""
    root = tmp_path_factory.mktemp("compare_store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = AnalysisConfig(n_repeats=2)
    runs = {}
    for version, cell in (("1", "sft0p6b|gsm8k"), ("2", "sft4b|gsm8k")):
        result = log_failure_landscape(
            _version_table(cell),
            MODEL,
            checkpoint=f"s3://ckpts/{MODEL}/{version}",
            tracking_uri=uri,
            config=config,
            lm_eval_run=_lm_eval_run(root / "lm_eval") if version == "2" else None,
            progress=None,
        )
        assert result.model_version == version
        runs[version] = result.run_id
    client = MlflowClient(uri, registry_uri=uri)
    client.set_registered_model_alias(MODEL, "champion", "1")
    client.set_registered_model_alias(MODEL, "candidate", "2")
    return {"uri": uri, "runs": runs, "client": client, "root": root}


def _compare(store: dict, *args: str):
    return CliRunner().invoke(
        main, ["compare", "--model-name", MODEL, "--tracking-uri", store["uri"], *args, *FAST]
    )


def _compare_artifacts(store: dict, version: str) -> set[str]:
    client, run = store["client"], store["runs"][version]
    return {a.path for a in client.list_artifacts(run, "compare/vs_v1")}


@pytest.mark.slow
def test_nothing_is_logged_when_the_page_cannot_be_written(store):
    blocker = store["root"] / "blocker"
    blocker.write_text("")
    result = _compare(store, "--versions", "1", "2", "--log", "-o", str(blocker / "c.html"))
    assert result.exit_code == 2, result.output
    assert _compare_artifacts(store, "2") == set()


@pytest.mark.slow
def test_versions_compared_and_logged_on_the_newer_run(store, tmp_path):
    page = tmp_path / "compare.html"
    result = _compare(store, "--versions", "1", "2", "--log", "--json", "-o", str(page))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["registered_model"] == MODEL and doc["same_model"] is True
    assert (doc["old"]["label"], doc["new"]["label"]) == ("v1", "v2")
    assert doc["old"]["run_id"] == store["runs"]["1"]
    assert doc["new"]["run_id"] == store["runs"]["2"]
    section = doc["tasks"]["gsm8k"]
    moves = section["transitions"]
    assert (moves["n_paired"], moves["n_stopped_failing"], moves["n_started_failing"]) == (
        59, 137, 0,
    )  # fmt: skip
    assert section["old"]["n_units"] == 196 and section["new"]["n_units"] == 59
    # pass@k: logged with version 2's lm-eval run only.
    assert section["old"]["pass_at_k"] is None
    assert section["new"]["pass_at_k"] == {"pass@1": 0.61, "pass@16": 0.9}
    assert section["old"]["selection"]["logged"]  # the policy `failtrace log` selected
    logged = doc["logged"]
    assert logged["run_id"] == store["runs"]["2"]
    assert logged["html"] == "compare/vs_v1/compare.html"
    assert _compare_artifacts(store, "2") == {
        "compare/vs_v1/compare.html",
        "compare/vs_v1/compare.json",
    }
    assert not store["client"].list_artifacts(store["runs"]["1"], "compare")
    folder = Path(
        store["client"].download_artifacts(
            store["runs"]["2"], "compare/vs_v1", str(tmp_path / "dl")
        )
    )
    stored = json.loads((folder / "compare.json").read_text())
    assert stored["tasks"]["gsm8k"]["transitions"] == moves
    assert (folder / "compare.html").read_text() == page.read_text()


@pytest.mark.slow
def test_aliases_name_the_same_versions(store):
    result = _compare(store, "--aliases", "champion", "candidate", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["old"]["label"], doc["new"]["label"]) == ("v1 (champion)", "v2 (candidate)")
    assert doc["tasks"]["gsm8k"]["transitions"]["n_paired"] == 59
    assert "logged" not in doc
    missing = _compare(store, "--aliases", "champion", "nope")
    assert missing.exit_code == 2
    assert "--aliases: registered model 'cmp-sft' has no alias 'nope'" in missing.stderr
