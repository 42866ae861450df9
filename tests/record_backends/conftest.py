"""Fixtures for the backend tests: a tiny local causal LM and a runner for ``failtrace eval``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAILTRACE = Path(sys.executable).with_name("failtrace")


def _run_failtrace(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed ``failtrace`` CLI in a subprocess, single-threaded and offline."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [str(FAILTRACE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def run_failtrace() -> Callable[..., subprocess.CompletedProcess]:
    return _run_failtrace


@pytest.fixture(scope="session")
def tasks_path() -> str:
    """The folder ``failtrace tasks-path`` prints (the user flow's ``--include_path``)."""
    out = subprocess.run(
        [str(FAILTRACE), "tasks-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(out, "failtrace_arith").is_dir(), out
    return out
