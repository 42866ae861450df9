"""Compare two versions of a registered model: their logged landscapes, fetched from MLflow.

``failtrace log`` links a model version to its landscape run by the tag ``failtrace.run_id``
(:data:`lm_failtrace.tracking.registry.TAG_RUN`); that run holds the profile table
(``profiles.csv``), the analysis (``analysis.json``: the selected policy as logged) and the metrics
(``<task>.pass_at_<k>`` when the lm-eval run was given). :func:`load_version_profiles` reads them
back; :func:`compare_versions` compares two versions with :func:`lm_failtrace.analysis.compare`;
:func:`log_comparison` attaches ``compare.html`` and ``compare.json`` to a version's run under
``compare/vs_v<other>/``, in one upload after everything is computed (a failed upload removes
what it wrote, as far as the artifact store allows).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_failtrace.analysis import AnalysisConfig, CompareSide, compare
from lm_failtrace.errors import InputError
from lm_failtrace.formatting import to_jsonable
from lm_failtrace.profiles import ProfileTable, cell_task, read_profiles
from lm_failtrace.tracking import registry
from lm_failtrace.tracking.metrics import metric_name
from lm_failtrace.tracking.uri import resolve_tracking_uri, tracking_client

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

#: Artifact names ``failtrace log`` writes on a version's landscape run.
PROFILES_ARTIFACT = "profiles.csv"
ANALYSIS_ARTIFACT = "analysis.json"

#: Files :func:`log_comparison` attaches.
COMPARE_HTML = "compare.html"
COMPARE_JSON = "compare.json"

_PASS_AT_K = re.compile(r"^(pass|maj)_at_(\d+)$")


@dataclass
class VersionProfiles:
    """One registered model version's logged landscape.

    Attributes:
        model_name, version: the registered model version; ``alias`` when it was named by one.
        run_id: its landscape run (tag ``failtrace.run_id``).
        table: the profile table logged on that run.
        pass_at_k: task -> ``pass@k``/``maj@k`` -> value, from the run's metrics (empty if none).
        logged_selection: task -> the policy the logged analysis selected (empty if unreadable).
    """

    model_name: str
    version: str
    alias: str | None
    run_id: str
    table: ProfileTable
    pass_at_k: dict[str, dict[str, float]]
    logged_selection: dict[str, str]

    @property
    def label(self) -> str:
        return f"v{self.version}" + (f" ({self.alias})" if self.alias else "")

    def side(self) -> CompareSide:
        """What :func:`lm_failtrace.analysis.compare` shows of this version besides its table."""
        details = {"registered_model": self.model_name, "version": self.version}
        if self.alias:
            details["alias"] = self.alias
        details["run_id"] = self.run_id
        return CompareSide(self.label, self.pass_at_k, self.logged_selection, details)


def _model_version(
    client: MlflowClient, name: str, version: str | None, alias: str | None, parameter: str
) -> ModelVersion:
    if (version is None) == (alias is None):
        raise InputError("give a version or an alias (one of them)", parameter=parameter)
    if alias is not None:
        model = registry.get_model(client, name)
        version = model.aliases.get(alias) if model is not None else None
        if version is None:
            raise registry.not_found(client, name, alias=alias, parameter=parameter)
    found = registry.get_version(client, name, str(version))
    if found is None:
        raise registry.not_found(client, name, version=str(version), parameter=parameter)
    return found


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a progress bar on stderr per download; two small files need none."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _download(client: MlflowClient, run_id: str, name: str, folder: str) -> Path | None:
    """``name`` from the run's artifacts into ``folder``, or None when the run does not have it."""
    try:
        with _no_progress_bar():
            path = Path(client.download_artifacts(run_id, name, folder))
    except Exception:  # stores raise many types (MlflowException, OSError) for a missing file
        return None
    return path if path.is_file() else None


def _pass_at_k(metrics: dict[str, float], tasks: list[str]) -> dict[str, dict[str, float]]:
    """``<task>.pass_at_<k>`` / ``maj_at_<k>`` run metrics, as task -> ``pass@k`` -> value."""
    out: dict[str, dict[str, float]] = {}
    for task in tasks:
        prefix = metric_name(task) + "."
        for key, value in metrics.items():
            match = _PASS_AT_K.match(key[len(prefix) :]) if key.startswith(prefix) else None
            if match:
                out.setdefault(task, {})[f"{match[1]}@{match[2]}"] = float(value)
    return {
        task: dict(sorted(v.items(), key=lambda kv: int(kv[0].split("@")[1])))
        for task, v in out.items()
    }


def _logged_selection(path: Path | None) -> dict[str, str]:
    """Task -> selected policy, from a logged ``analysis.json`` (empty when it cannot be read)."""
    if path is None:
        return {}
    try:
        cells = json.loads(path.read_text()).get("cells") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    out = {}
    for cell, section in cells.items():
        selected = (section.get("selection") or {}).get("selected")
        if selected:
            out[cell_task(str(cell))] = str(selected)
    return out


def _load(
    client: MlflowClient,
    model_name: str,
    version: str | None,
    alias: str | None,
    parameter: str,
) -> VersionProfiles:
    mv = _model_version(client, model_name, version, alias, parameter)
    what = f"{model_name} version {mv.version}"
    run_id = mv.tags.get(registry.TAG_RUN)
    if not run_id:
        raise InputError(
            f"{what} has no {registry.TAG_RUN} tag: log its failure landscape first "
            "(failtrace log)",
            parameter=parameter,
        )
    try:
        metrics = dict(client.get_run(run_id).data.metrics)
    except Exception as exc:  # deleted run, or a store that cannot find it
        raise InputError(
            f"{what} links to run {run_id}, which cannot be read ({exc})", parameter=parameter
        ) from exc
    with tempfile.TemporaryDirectory() as tmp:
        path = _download(client, run_id, PROFILES_ARTIFACT, tmp)
        if path is None:
            raise InputError(
                f"run {run_id} of {what} has no {PROFILES_ARTIFACT} artifact: log its failure "
                "landscape again (failtrace log)",
                parameter=parameter,
            )
        table = read_profiles(path)
        selection = _logged_selection(_download(client, run_id, ANALYSIS_ARTIFACT, tmp))
    table = ProfileTable(table.frame, table.schema, f"runs:/{run_id}/{PROFILES_ARTIFACT}")
    tasks = list(dict.fromkeys(table.frame["task"]))
    return VersionProfiles(
        model_name, str(mv.version), alias, run_id, table, _pass_at_k(metrics, tasks), selection
    )


def load_version_profiles(
    model_name: str,
    version: str | None = None,
    *,
    alias: str | None = None,
    tracking_uri: str | None = None,
) -> VersionProfiles:
    """The landscape logged for ``model_name`` version ``version`` (or the one ``alias`` names).

    Raises:
        InputError: unreachable store, unknown version or alias, a version without a logged
            landscape (no link tag, or its run lacks ``profiles.csv``).
    """
    client = tracking_client(resolve_tracking_uri(tracking_uri))
    parameter = "version" if version is not None else "alias"
    return _load(client, model_name, version, alias, parameter)


@dataclass
class VersionComparison:
    """Two versions' comparison document, and the versions it came from."""

    document: dict[str, Any]
    old: VersionProfiles
    new: VersionProfiles
    tracking_uri: str


def compare_versions(
    model_name: str,
    versions: tuple[str, str] | None = None,
    aliases: tuple[str, str] | None = None,
    *,
    tracking_uri: str | None = None,
    config: AnalysisConfig | None = None,
    tasks: tuple[str, ...] = (),
) -> VersionComparison:
    """Compare two versions of one registered model (the first is the baseline, ``old``).

    Args:
        model_name: the registered model.
        versions: two version numbers; or ``aliases``: two aliases (exactly one of the two).
        tracking_uri: see :func:`lm_failtrace.tracking.resolve_tracking_uri`.
        config, tasks: as :func:`lm_failtrace.analysis.compare`.

    Raises:
        InputError: see :func:`load_version_profiles`; different tasks (naming both).
    """
    if (versions is None) == (aliases is None):
        raise InputError("give two `versions` or two `aliases`", parameter="versions")
    parameter = "versions" if versions is not None else "aliases"
    refs = list(versions or aliases or ())
    if len(refs) != 2:
        raise InputError(f"give exactly two, not {len(refs)}", parameter=parameter)
    uri = resolve_tracking_uri(tracking_uri)
    client = tracking_client(uri)
    loaded = [
        _load(client, model_name, *((ref, None) if versions else (None, ref)), parameter)
        for ref in refs
    ]
    old, new = loaded
    document = compare(
        old.table, new.table, config, tasks=tasks, old_side=old.side(), new_side=new.side()
    )
    document["registered_model"] = model_name
    return VersionComparison(document, old, new, uri)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _remove(client: MlflowClient, run_id: str, artifact_path: str) -> None:
    """Best effort: delete what a failed upload left under ``artifact_path``."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        uri = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + artifact_path
        get_artifact_repository(uri).delete_artifacts()
    except Exception as exc:  # the original error is re-raised; this only reports
        _stderr(f"cleanup: could not delete {artifact_path} from run {run_id}: {exc}")


def log_comparison(
    comparison: VersionComparison, html: str, *, run_id: str | None = None
) -> dict[str, str]:
    """Attach ``compare.html`` and ``compare.json`` to the newer version's run (or ``run_id``).

    Both files are written first and uploaded in one call, under ``compare/vs_v<old version>/``.

    Returns:
        ``{"run_id", "artifact_path", "html", "json"}`` (artifact paths within the run).
    """
    client = tracking_client(comparison.tracking_uri)
    run_id = run_id or comparison.new.run_id
    artifact_path = f"compare/vs_v{comparison.old.version}"
    text = json.dumps(to_jsonable(comparison.document), indent=2, allow_nan=False)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / COMPARE_HTML).write_text(html, encoding="utf-8")
        (Path(tmp) / COMPARE_JSON).write_text(text, encoding="utf-8")
        try:
            client.log_artifacts(run_id, tmp, artifact_path)
        except BaseException:
            _remove(client, run_id, artifact_path)
            raise
    return {
        "run_id": run_id,
        "artifact_path": artifact_path,
        "html": f"{artifact_path}/{COMPARE_HTML}",
        "json": f"{artifact_path}/{COMPARE_JSON}",
    }
