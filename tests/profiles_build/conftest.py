"""Fixtures of the ``failtrace profile`` tests (data and writers live in profile_fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_fixtures import ROLLOUTS, write_jsonl


@pytest.fixture
def sidecar(tmp_path: Path) -> Path:
    """The hand-made rollouts as one side-car/generic JSONL table."""
    return write_jsonl(tmp_path / "rollouts.jsonl", ROLLOUTS)
