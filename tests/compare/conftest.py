"""Fixtures of the comparison tests: two small tables with known regimes (``compare_tables``)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from compare_tables import NEW_RATES, OLD_RATES, profile_frame

from lm_failtrace.analysis import AnalysisConfig

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


@pytest.fixture
def fast() -> AnalysisConfig:
    """Cheap cross-fitting: these tests check the comparison, not the honest protocol's numbers."""
    return AnalysisConfig(n_repeats=2, n_folds=3)


@pytest.fixture
def old_frame() -> pd.DataFrame:
    return profile_frame(OLD_RATES, "ckpt-100")


@pytest.fixture
def new_frame() -> pd.DataFrame:
    return profile_frame(NEW_RATES, "ckpt-200", seed=1)


@pytest.fixture
def table_files(tmp_path, old_frame, new_frame):
    """The two tables as CSV files: ``(old, new)``."""
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old_frame.to_csv(old, index=False)
    new_frame.to_csv(new, index=False)
    return old, new
