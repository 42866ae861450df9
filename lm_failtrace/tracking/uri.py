"""Where results go: resolve the MLflow tracking URI and make sure it can take writes.

Order: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db`` as an
*absolute* path (MLflow's own default is relative, and falls back to a file store that errors when
the directory holds ``./mlruns`` data). A new sqlite database is created and migrated by one
process at a time under a file lock: several processes initialising the same new file at once
corrupted its schema in a check here (docs/mlflow.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lm_failtrace.errors import InputError
from lm_failtrace.tracking.retry import RetryingClient

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: File name of the local default database, in the working directory.
DEFAULT_DB = "mlflow.db"

#: Seconds to wait for a tracking server's ``GET /health`` before calling it unreachable.
HEALTH_TIMEOUT_S = 10.0


def resolve_tracking_uri(explicit: str | None = None, cwd: str | Path | None = None) -> str:
    """The tracking URI to use (see the module docstring for the order)."""
    if explicit:
        return explicit
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(cwd or Path.cwd()) / DEFAULT_DB).resolve()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for any other scheme."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :])


#: The experiment tag from which MLflow's UI (3.x) decides what an experiment is, and its value
#: for classic model development: the experiment opens on its runs, not on GenAI traces (which
#: the UI otherwise infers when it finds traces, and then stores in this tag).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def use_experiment(client: MlflowClient, uri: str, name: str) -> str:
    """Make ``name`` the active experiment, creating it if needed, as a classic ML experiment.

    Returns its id.

    A new experiment is tagged :data:`EXPERIMENT_KIND`, and so is an existing one without a kind
    (a kind someone chose is kept). With a local sqlite database, a new experiment keeps its
    artifacts in ``mlartifacts/`` beside the database file (MLflow's default is ``./mlruns`` in
    whatever directory the command ran from), so the database and everything it points at move
    together.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    db = sqlite_path(uri)
    found = client.get_experiment_by_name(name)
    if found is None:
        location = (db.parent / "mlartifacts").resolve().as_uri() if db is not None else None
        try:
            client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except MlflowException:  # another process created it first
            if client.get_experiment_by_name(name) is None:
                raise
    elif EXPERIMENT_KIND_TAG not in found.tags:
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return mlflow.set_experiment(name).experiment_id


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing), released on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_http(uri: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
            if response.status != 200:
                raise OSError(f"GET /health answered HTTP {response.status}")
    except (OSError, urllib.error.URLError) as exc:
        raise InputError(
            f"cannot reach the MLflow tracking server at {uri} ({exc}); nothing was logged. "
            "Start the server or pass another `tracking_uri`.",
            parameter="tracking_uri",
        ) from exc


def tracking_client(uri: str) -> MlflowClient:
    """A client for ``uri`` after checking it can take writes; also sets it as MLflow's default.

    Its calls are retried on transient errors (:class:`.retry.RetryingClient`).

    HTTP(S) servers must answer ``GET /health`` within :data:`HEALTH_TIMEOUT_S` seconds (MLflow's
    own client retries for minutes before failing). A local sqlite database is created and migrated
    under ``<db>.lock`` before anything else touches it.

    Raises:
        InputError: the server is unreachable or the database cannot be opened (names the URI).
    """
    import mlflow
    from mlflow import MlflowClient

    if uri.startswith(("http://", "https://")):
        _check_http(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    db = sqlite_path(uri)
    lock = _file_lock(db.with_name(db.name + ".lock")) if db else contextlib.nullcontext()
    try:
        with lock:
            # Creating the client instantiates the stores, which create and migrate the schema
            # of a new database: it must happen under the lock.
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    except Exception as exc:  # MLflow raises many types for a store it cannot open
        raise InputError(
            f"cannot open the MLflow tracking store at {uri}: {exc}", parameter="tracking_uri"
        ) from exc
    return RetryingClient(client)  # type: ignore[return-value]
