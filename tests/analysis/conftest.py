"""Fixtures for the analysis tests: the paper's table and synthetic tables of the same schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.profiles import PAPER_OPERATORS, ProfileTable, read_profiles, validate_profiles

#: Cheap cross-fitting for tests that check structure rather than the default 10 x 5 numbers.
FAST = AnalysisConfig(n_repeats=2, n_folds=3, n_bootstrap=3, k_range=(2, 3))


def synthetic_frame(
    cells: tuple[str, ...] = ("m1|t1", "m1|t2", "m2|t1"),
    n_per_cell: int = 60,
    seed: int = 0,
    tokens: bool = False,
) -> pd.DataFrame:
    """Profile rows with rescue rates that are exact multiples of 1/20 (as in real assays)."""
    rng = np.random.default_rng(seed)
    frames = []
    for c, cell in enumerate(cells):
        model, task = cell.split("|")
        n = n_per_cell
        frame = pd.DataFrame(
            {
                "cell": cell,
                "model": model,
                "task": task,
                "problem_id": [f"{task}-{i}" for i in range(n)],
                "spread": rng.uniform(0.05, 0.6, n) + 0.1 * c,
                "concentration": rng.normal(2.0 + c, 0.3, n),
                "logit_dispersion": rng.normal(-0.8, 0.15, n),
            }
        )
        for op in PAPER_OPERATORS:
            frame[op] = rng.integers(0, 21, n) / 20
        if tokens:
            for j, op in enumerate(PAPER_OPERATORS):
                frame[f"{op}_tokens"] = rng.uniform(100, 400, n) * (1 + j)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def fast() -> AnalysisConfig:
    return FAST


@pytest.fixture
def make_frame():
    """The :func:`synthetic_frame` factory (fixtures, because tests/ is not a package)."""
    return synthetic_frame


@pytest.fixture
def synthetic() -> ProfileTable:
    return validate_profiles(synthetic_frame(), source="synthetic")


@pytest.fixture(scope="session")
def paper_table(paper_csv: Path) -> ProfileTable:
    return read_profiles(paper_csv)
