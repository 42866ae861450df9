"""Shared fixtures: the paper's per-problem data, read in place from ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAPER_CSV = REPO.parent / "shared" / "data" / "paper" / "failure_profiles.visible.csv"


@pytest.fixture(scope="session")
def paper_csv() -> Path:
    if not PAPER_CSV.is_file():
        raise FileNotFoundError(
            f"the paper's data is expected at {PAPER_CSV} (shared/ beside the repo)"
        )
    return PAPER_CSV
