"""Library errors name parameters; the CLI names the flags that set them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.cli import main
from lm_failtrace.cli._common import flag_name
from lm_failtrace.errors import InputError
from lm_failtrace.repair.runner import RepairConfig


def test_library_names_the_parameter() -> None:
    with pytest.raises(InputError) as caught:
        RepairConfig(operators=("retry", "foo")).check()
    assert caught.value.parameter == "operators"
    assert str(caught.value).startswith("parameter 'operators': unknown operator(s) foo")
    assert "--" not in str(caught.value)


def test_analysis_config_names_its_parameters() -> None:
    with pytest.raises(InputError) as caught:
        AnalysisConfig(n_folds=1).check()
    assert caught.value.parameter == "n_folds"
    with pytest.raises(InputError) as caught:
        AnalysisConfig(operators=("sparse_steer",)).check()
    assert caught.value.parameter == "operators"
    assert "--" not in str(caught.value)


def test_cli_names_the_flag(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    result = CliRunner().invoke(
        main, ["repair", str(run), "-o", str(tmp_path / "r.parquet"), "--operators", "retry,foo"]
    )
    assert result.exit_code == 2, result.output
    assert "--operators: unknown operator(s) foo" in result.stderr
    assert "parameter 'operators'" not in result.stderr


def test_parameters_in_messages_become_flags() -> None:
    error = InputError("give `model_version` or `checkpoint`", parameter="model_version")
    assert error.format() == "parameter 'model_version': give `model_version` or `checkpoint`"
    assert error.format(flag_name) == "--model-version: give --model-version or --checkpoint"
    assert flag_name("n_folds") == "--folds" and flag_name("not_a_flag") is None
