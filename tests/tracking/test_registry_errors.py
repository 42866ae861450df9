"""MLflow's refusals are user errors: exit 2, one line naming what is missing and what exists.

The commands run in-process (click's runner) against a local sqlite store holding one logged
model version; model-name rules are MLflow's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.cli import main
from lm_failtrace.tracking import log_failure_landscape

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logged(tmp_path_factory, paper_csv) -> tuple[str, Path]:
    """A store with ``qwen2.5-sft`` version 1 logged (a dot: MLflow accepts it) and promoted."""
    import pandas as pd

    root = tmp_path_factory.mktemp("registry_errors")
    source = root / "p.csv"
    frame = pd.read_csv(paper_csv, dtype={"problem_id": str})
    frame.loc[frame["cell"] == "sft4b|gsm8k"].to_csv(source, index=False)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = log_failure_landscape(
        source, "qwen2.5-sft", checkpoint="file:///ckpt/q", tracking_uri=uri,
        config=AnalysisConfig(n_repeats=2), progress=None,
    )  # fmt: skip
    assert (result.model_version, result.router_version) == ("1", "1")
    client = MlflowClient(uri, registry_uri=uri)
    client.set_registered_model_alias("qwen2.5-sft", "champion", "1")
    client.set_registered_model_alias("qwen2.5-sft-router", "champion", "1")
    return uri, source


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _one_error_line(code: int, output: str) -> str:
    assert code == 2, output
    assert "Traceback" not in output
    (line,) = [ln for ln in output.splitlines() if ln.startswith("Error:")]
    return line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("promote", "--model-name", "nosuch", "--version", "1", "--alias", "x"),
         "--version: registered model 'nosuch' has no version 1: there is no registered model "
         "'nosuch' in this store (registered models: qwen2.5-sft, qwen2.5-sft-router)"),
        (("promote", "--model-name", "qwen2.5-sft", "--version", "7", "--alias", "x"),
         "--version: registered model 'qwen2.5-sft' has no version 7 (versions: 1)"),
        (("promote", "--model-name", "qwen2.5-sft", "--version", "abc", "--alias", "x"),
         "'abc' is not a valid integer"),
        (("log", "{source}", "--model-name", "qwen2.5-sft", "--model-version", "9"),
         "--model-version: registered model 'qwen2.5-sft' has no version 9 (versions: 1); pass "
         "--checkpoint"),
        (("status", "--model-name", "nosuch"), "no registered model 'nosuch'"),
        (("compare", "--model-name", "qwen2.5-sft", "--versions", "1", "7"),
         "--versions: registered model 'qwen2.5-sft' has no version 7 (versions: 1)"),
        (("compare", "--model-name", "qwen2.5-sft", "--aliases", "champion", "nosuch"),
         "--aliases: registered model 'qwen2.5-sft' has no alias 'nosuch' (aliases: champion "
         "-> version 1)"),
    ],
)  # fmt: skip
def test_missing_things_are_named_with_what_exists(logged, args, expected) -> None:
    uri, source = logged
    args = tuple(str(source) if a == "{source}" else a for a in args)
    line = _one_error_line(*_run(*args, "--tracking-uri", uri))
    assert expected in line


def test_promote_when_the_router_version_was_deleted(logged, tmp_path) -> None:
    uri, _ = logged
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(uri.removeprefix("sqlite:///")).read_bytes())
    uri = f"sqlite:///{copy}"
    MlflowClient(uri, registry_uri=uri).delete_model_version("qwen2.5-sft-router", "1")
    line = _one_error_line(
        *_run("promote", "--model-name", "qwen2.5-sft", "--version", "1", "--alias", "x",
              "--tracking-uri", uri)
    )  # fmt: skip
    assert "links to qwen2.5-sft-router version 1, which does not exist" in line


def test_a_new_checkpoint_cannot_take_a_version_number_mlflow_would_not_give(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    table = tmp_path / "p.csv"
    from lm_failtrace.datasets import paper_profiles_path

    table.write_text(paper_profiles_path().read_text())
    line = _one_error_line(
        *_run("log", str(table), "--cell", "sft4b|gsm8k", "--model-name", "m", "--model-version",
              "2", "--checkpoint", "file:///c", "--tracking-uri", uri, "--repeats", "2")
    )  # fmt: skip
    assert "would make it m version 1, not 2" in line
    client = MlflowClient(uri, registry_uri=uri)
    assert client.search_model_versions("name = 'm'") == []


@pytest.mark.parametrize(
    ("name", "rule"),
    [("a/b", "Names cannot contain '/' or ':'"), ("", "the name is empty"), (" ", "empty")],
)
def test_names_mlflow_refuses_are_refused_before_anything_is_written(
    logged, tmp_path, name, rule
) -> None:
    _, source = logged
    db = tmp_path / "mlflow.db"
    line = _one_error_line(
        *_run("log", str(source), "--model-name", name, "--checkpoint", "file:///c",
              "--tracking-uri", f"sqlite:///{db}")
    )  # fmt: skip
    assert line.startswith("Error: --model-name: ") and rule in line
    assert "MLflow's rule" in line
    assert not db.exists()


def test_bad_input_creates_no_database(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("cell,model,task\nx,y,z\n")
    db = tmp_path / "mlflow.db"
    code, output = _run(
        "log", str(bad), "--model-name", "m", "--checkpoint", "file:///c",
        "--tracking-uri", f"sqlite:///{db}",
    )  # fmt: skip
    _one_error_line(code, output)
    assert not db.exists()


def _telemetry_client(env_extra: dict[str, str]) -> str:
    """Whether MLflow started its telemetry client after lm_failtrace.tracking was imported,
    in an environment that is neither CI nor pytest (MLflow's own opt-outs)."""
    skip = ("CI", "PYTEST_CURRENT_TEST", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
    env = {k: v for k, v in os.environ.items() if k not in skip} | env_extra
    code = (
        "import lm_failtrace.tracking, mlflow\n"
        "from mlflow.telemetry.client import get_telemetry_client\n"
        "print(get_telemetry_client() is not None)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_mlflow_telemetry_is_off_unless_asked_for() -> None:
    assert _telemetry_client({}) == "False"
    assert _telemetry_client({"MLFLOW_DISABLE_TELEMETRY": "false"}) == "True"
