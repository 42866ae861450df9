"""docs/api.md's examples run, in an empty folder, exactly as a reader would type them."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.mark.slow
def test_api_md_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = doctest.testfile(
        str(API_MD),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted >= 20
    assert result.failed == 0, f"{result.failed} example(s) of {API_MD} failed (output above)"
