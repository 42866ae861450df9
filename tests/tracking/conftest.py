"""Fixtures for the MLflow tests: one real ``mlflow server`` per session, small profile tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import _servers
import pandas as pd
import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

VENV_BIN = Path(sys.executable).parent
FAILTRACE = str(VENV_BIN / "failtrace")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real tracking server on 127.0.0.1 (sqlite backend, local artifact folder)."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _servers.free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"), "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not start: {(root / 'server.log').read_text()}"
                )
            time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _cell_csv(paper_csv: Path, out: Path, *cells: str) -> Path:
    """A profile CSV holding only ``cells`` of the paper's data."""
    frame = pd.read_csv(paper_csv, dtype={"problem_id": str})
    frame.loc[frame["cell"].isin(cells)].to_csv(out, index=False)
    return out


@pytest.fixture
def sft4b_csv(paper_csv: Path, tmp_path: Path) -> Path:
    return _cell_csv(paper_csv, tmp_path / "sft4b.csv", "sft4b|gsm8k")


@pytest.fixture
def cell_csv(paper_csv: Path):
    """``cell_csv(out, *cells)`` writes a profile CSV with only those cells of the paper's data."""
    return lambda out, *cells: _cell_csv(paper_csv, out, *cells)


@pytest.fixture
def free_port():
    return _servers.free_port


def _run_failtrace(*args: str, cwd: Path | None = None, env: dict | None = None):
    full_env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
    return subprocess.run(
        [FAILTRACE, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="session")
def failtrace():
    """``failtrace(*args, cwd=, env=)`` runs the real console script in a subprocess."""
    return _run_failtrace

