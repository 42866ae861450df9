"""Fixtures for the MLflow tests: one real ``mlflow server`` per session, small profile tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import _servers
import pandas as pd
import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

VENV_BIN = Path(sys.executable).parent
FAILTRACE = str(VENV_BIN / "failtrace")


#: ``postgresql://USER@HOST:PORT/DB`` of a PostgreSQL server the tests may create databases on
#: (.ci/run starts one and sets it). Unset on a developer's machine: the ``postgres`` tests are
#: then deselected, and pytest says so; under CI (``CI`` set) they run and fail without it.
POSTGRES_VARIABLE = "FAILTRACE_TEST_POSTGRES_URI"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(POSTGRES_VARIABLE) or os.environ.get("CI"):
        return
    deselected = [item for item in items if item.get_closest_marker("postgres")]
    if deselected:
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]
        config.hook.pytest_deselected(items=deselected)
        config.issue_config_time_warning(
            pytest.PytestWarning(
                f"{len(deselected)} tests against an mlflow server on PostgreSQL deselected: "
                f"{POSTGRES_VARIABLE} is not set (.ci/run starts PostgreSQL and sets it)"
            ),
            stacklevel=2,
        )


def _start_server(root: Path, backend: str):
    """A real ``mlflow server`` on 127.0.0.1 with ``backend`` and proxied artifacts (a generator:
    yields its URI, stops it after)."""
    port = _servers.free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"), "server",
            "--backend-store-uri", backend,
            "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        ],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real tracking server on 127.0.0.1 (sqlite backend, proxied local artifact folder)."""
    root = tmp_path_factory.mktemp("mlflow_server")
    yield from _start_server(root, f"sqlite:///{root / 'mlflow.db'}")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real tracking server on a new PostgreSQL database of :data:`POSTGRES_VARIABLE`'s
    server (one database per test process), artifacts proxied by the server: a team's setup."""
    import psycopg

    admin = os.environ.get(POSTGRES_VARIABLE)
    if not admin:
        raise RuntimeError(f"{POSTGRES_VARIABLE} is not set: .ci/run starts PostgreSQL and sets it")
    database = f"failtrace_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {database}")
    backend = f"{admin.rsplit('/', 1)[0]}/{database}"
    yield from _start_server(tmp_path_factory.mktemp("mlflow_postgres"), backend)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest) -> str:
    """A real tracking server, with its metadata in sqlite or in PostgreSQL (shared by the
    session)."""
    name = "mlflow_server" if request.param == "sqlite" else "postgres_server"
    return request.getfixturevalue(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A tracking URI: a new local sqlite database (a user's default), or the server on
    PostgreSQL (shared by the session: tests use model names of their own)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    return request.getfixturevalue("postgres_server")


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
