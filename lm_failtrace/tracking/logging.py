"""``failtrace log``: one model version's failure landscape into MLflow, all or nothing.

Layout (a stated convention): experiment ``failtrace/<NAME>``; per model version one parent run
``<NAME> v<V>`` holding the pooled analysis, report, figures and the router, with one nested run
per (model version, task) cell holding that cell's metrics and artifacts. Every run takes the
model version's LoggedModel as an input, and the headline metrics are also attached to that
LoggedModel (``model_id=``), so they show on the model's page.

Order (why it is all or nothing): analysis, router, figures and report are computed before any run
exists; runs, metrics, datasets and artifacts are written next; the router is logged as a
LoggedModel; only then is it registered as ``NAME-router`` (its link tags set in the same call,
its description next) and, last, the model version's description (:mod:`.describe`) and link
tags are set. Any failure marks every run of this attempt FAILED, deletes a router version it
created, restores the model version's previous description and link tags and deletes the
unregistered router LoggedModel, so no tag, description or version ever points at incomplete
results.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.profiles import ProfileData, cell_task, write_profiles
from lm_failtrace.tracking import describe, registry
from lm_failtrace.tracking.inputs import LandscapeInput, code_version, content_hash, load_input
from lm_failtrace.tracking.landscape import Landscape, compute_landscape
from lm_failtrace.tracking.metrics import cell_metrics, flat_params, metric_name, pooled_metrics
from lm_failtrace.tracking.router_model import log_router
from lm_failtrace.tracking.uri import resolve_tracking_uri, tracking_client, use_experiment

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

Progress = Callable[[str], None]

#: Context of the profile datasets logged as run inputs (MLflow's ``mlflow.data.context`` tag).
DATASET_CONTEXT = "evaluation"

#: The per-unit profiles as an MLflow table artifact (the UI's table viewer filters it).
PROFILE_TABLE = "profiles.json"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class LogResult:
    """Where a landscape was logged (``reused``: an earlier complete log of the same input)."""

    tracking_uri: str
    experiment: str
    model_name: str
    model_version: str
    router_name: str
    router_version: str
    run_id: str
    input_hash: str
    reused: bool = False
    task_runs: dict[str, str] = field(default_factory=dict)
    #: the analysis document, when this call computed it (None when ``reused``)
    analysis: dict[str, Any] | None = None


def _run_params(inp: LandscapeInput, config: AnalysisConfig, version: str) -> dict[str, str]:
    return {
        "failtrace.code_version": version,
        "failtrace.source": inp.source,
        **flat_params("failtrace", config.to_dict()),
        **flat_params("lm_eval", inp.lm_eval_config),
    }


def _write_files(folder: Path, landscape: Landscape, cell: str | None) -> None:
    table = landscape.table
    frame = table.frame if cell is None else table.frame.loc[table.frame["cell"] == cell]
    write_profiles(frame, folder / "profiles.csv")
    (folder / "analysis.json").write_text(landscape.analysis_json(cell))
    (folder / "report.html").write_text(landscape.report_html, encoding="utf-8")
    figures = folder / "figures"
    figures.mkdir()
    for name, png in landscape.figures.items():
        (figures / name).write_bytes(png)


def headline_metrics(landscape: Landscape, inp: LandscapeInput) -> dict[str, dict[str, float]]:
    """Metrics per cell (its section plus the task's pass@k from lm-eval) and ``pooled``.

    ``pooled`` only with several cells (:func:`~lm_failtrace.tracking.metrics.pooled_metrics`).
    """
    out = {}
    for cell, section in landscape.analysis["cells"].items():
        passk = {metric_name(k): v for k, v in inp.pass_at_k.get(cell_task(cell), {}).items()}
        out[cell] = {**cell_metrics(section), **passk}
    pooled = pooled_metrics(landscape.analysis)
    if pooled:
        out["pooled"] = pooled
    return out


def _task_metrics(cell: str, values: Mapping[str, float]) -> dict[str, float]:
    """A cell's metrics named for the parent run and the LoggedModel: prefixed by its task."""
    return {metric_name(cell_task(cell), key): value for key, value in values.items()}


def model_metrics(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """One flat dict for the model's LoggedModel: cell metrics prefixed by task, plus pooled."""
    out = {}
    for cell, values in metrics.items():
        if cell != "pooled":
            out.update(_task_metrics(cell, values))
    out.update(metrics.get("pooled", {}))
    return out


def evaluation_datasets(landscape: Landscape, source: str) -> dict[str, Any]:
    """One ``mlflow.data`` dataset per cell: its profile rows, named by its task.

    Named by the cell instead when two cells share a task. ``source`` is the input's path when it
    is a file or folder (else MLflow records the code that logged it).
    """
    import mlflow.data

    frame = landscape.table.frame
    cells = list(landscape.analysis["cells"])
    unique = len({cell_task(c) for c in cells}) == len(cells)
    where = str(Path(source).resolve()) if source and Path(source).exists() else None
    out = {}
    with warnings.catch_warnings():  # schema hints and source-resolution notes, for every call
        warnings.simplefilter("ignore", UserWarning)
        for cell in cells:
            rows = frame.loc[frame["cell"] == cell].reset_index(drop=True)
            name = cell_task(cell) if unique else cell
            out[cell] = mlflow.data.from_pandas(rows, source=where, name=name)
    return out


def _log_cell_run(
    cell: str,
    landscape: Landscape,
    metrics: Mapping[str, float],
    dataset: Any,
    models: list[Any] | None,
) -> None:
    """The active (nested) run of one cell: its dataset, metrics, profile table and files."""
    import mlflow

    run_id = mlflow.active_run().info.run_id
    mlflow.log_input(dataset, context=DATASET_CONTEXT)
    mlflow.log_metrics(dict(metrics), dataset=dataset)
    if models:
        mlflow.MlflowClient().log_inputs(run_id, models=models)
    frame = landscape.table.frame
    mlflow.log_table(data=frame.loc[frame["cell"] == cell], artifact_file=PROFILE_TABLE)
    with tempfile.TemporaryDirectory() as tmp:
        _write_files(Path(tmp), landscape, cell)
        mlflow.log_artifacts(tmp)


def write_landscape(
    landscape: Landscape,
    inp: LandscapeInput,
    config: AnalysisConfig,
    *,
    model_id: str | None,
    run_tags: Mapping[str, str],
    started: list[str],
) -> dict[str, str]:
    """Log into the active run and one nested run per cell; returns cell -> run id.

    Each run gets params, metrics, the files of :func:`_write_files`, the profiles as the table
    artifact ``profiles.json`` and its cells' profile datasets as inputs (context
    ``evaluation``); the model's LoggedModel (``model_id``) is an input of every run and gets the
    task-prefixed metrics, each cell's with its dataset. Run ids are appended to ``started`` as
    soon as they exist, so a caller can mark them FAILED.
    """
    import mlflow
    from mlflow.entities import LoggedModelInput

    client = mlflow.MlflowClient()
    parent = mlflow.active_run().info.run_id
    params = _run_params(inp, config, code_version())
    models = [LoggedModelInput(model_id)] if model_id else None
    metrics = headline_metrics(landscape, inp)
    datasets = evaluation_datasets(landscape, inp.source)
    runs = {}
    for cell in landscape.analysis["cells"]:
        with mlflow.start_run(
            run_name=cell, nested=True, tags={**run_tags, "failtrace.cell": cell}
        ):
            run_id = mlflow.active_run().info.run_id
            started.append(run_id)
            runs[cell] = run_id
            mlflow.log_params({**params, "failtrace.task": cell_task(cell)})
            _log_cell_run(cell, landscape, metrics[cell], datasets[cell], models)
    mlflow.log_params(params)
    for dataset in datasets.values():
        mlflow.log_input(dataset, context=DATASET_CONTEXT)
    if models:
        client.log_inputs(parent, models=models)
    mlflow.log_table(data=landscape.table.frame, artifact_file=PROFILE_TABLE)
    with tempfile.TemporaryDirectory() as tmp:
        _write_files(Path(tmp), landscape, None)
        mlflow.log_artifacts(tmp)
    # Per cell with its dataset, so the LoggedModel's "Datasets used" names the tasks.
    for cell, dataset in datasets.items():
        mlflow.log_metrics(_task_metrics(cell, metrics[cell]), model_id=model_id, dataset=dataset)
    if metrics.get("pooled"):
        mlflow.log_metrics(metrics["pooled"], model_id=model_id)
    mlflow.set_tag("failtrace.task_runs", ",".join(runs.values()))
    return runs


@dataclass
class _Attempt:
    """What one log attempt created or changed so far, so that a failure can undo it."""

    model: tuple[str, str]
    router_name: str
    runs: list[str] = field(default_factory=list)
    router_version: str | None = None
    router_model_id: str | None = None
    #: the model version's link tags before this attempt changed them (None: not touched yet)
    old_tags: dict[str, str | None] | None = None
    #: the model version's description before this attempt replaced it
    old_description: str | None = None
    description_changed: bool = False


def _undo_steps(client: MlflowClient, attempt: _Attempt) -> list[tuple[str, Callable[[], Any]]]:
    model = attempt.model
    steps: list[tuple[str, Callable[[], Any]]] = [
        (f"mark run {r} FAILED", lambda r=r: client.set_terminated(r, "FAILED"))
        for r in attempt.runs
    ]
    for key, value in (attempt.old_tags or {}).items():
        if value is None:
            steps.append(
                (f"remove tag {key}", lambda k=key: client.delete_model_version_tag(*model, k))
            )
        else:
            steps.append(
                (
                    f"restore tag {key}",
                    lambda k=key, v=value: client.set_model_version_tag(*model, k, v),
                )
            )
    if attempt.description_changed:
        old = attempt.old_description
        steps.append(
            (
                "restore the description",
                lambda: client.update_model_version(*model, description=old),
            )
        )
    return steps


def _cleanup(client: MlflowClient, attempt: _Attempt) -> None:
    """Undo a failed attempt as far as the store allows; each step is tried independently."""
    steps = _undo_steps(client, attempt)
    if attempt.router_version is not None:
        steps.append(
            (
                f"delete {attempt.router_name} version {attempt.router_version}",
                lambda: client.delete_model_version(attempt.router_name, attempt.router_version),
            )
        )
    if attempt.router_model_id is not None:
        steps.append(
            (
                f"delete router model {attempt.router_model_id}",
                lambda: client.delete_logged_model(attempt.router_model_id),
            )
        )
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # keep undoing the rest; the original error is re-raised
            _stderr(f"cleanup: could not {what}: {exc}")


def _register_router(
    client: MlflowClient,
    landscape: Landscape,
    attempt: _Attempt,
    where: describe.Where,
    run_tags: Mapping[str, str],
) -> str:
    """Log the router as a LoggedModel, register it and describe the version; its version."""
    import mlflow

    router_tags = {**run_tags, registry.TAG_RUN: where.run_id}
    attempt.router_model_id = log_router(landscape.router, tags=router_tags)
    registered = mlflow.register_model(
        f"models:/{attempt.router_model_id}", attempt.router_name, tags=router_tags
    )
    attempt.router_version = str(registered.version)
    description = describe.router_version_description(
        landscape.router or {},
        landscape.analysis,
        model=attempt.model,
        router=(attempt.router_name, attempt.router_version),
        where=where,
        digest=run_tags[registry.TAG_HASH],
    )
    client.update_model_version(
        attempt.router_name, attempt.router_version, description=description
    )
    return attempt.router_version


def _link_model_version(
    client: MlflowClient,
    mv: ModelVersion,
    attempt: _Attempt,
    links: Mapping[str, str],
    description: str,
) -> None:
    """The model version's description, then its link tags (the commit point), both undoable.

    An older ``failtrace.router_version`` link is removed: ``failtrace.router`` replaces it.
    """
    name, version = attempt.model
    attempt.old_description, attempt.description_changed = mv.description, True
    client.update_model_version(name, version, description=description)
    attempt.old_tags = {}
    for key, value in links.items():
        attempt.old_tags[key] = mv.tags.get(key)  # before the write: a failed write is undone too
        client.set_model_version_tag(name, version, key, value)
    legacy = mv.tags.get(registry.TAG_LEGACY_ROUTER_VERSION)
    if legacy is not None:
        attempt.old_tags[registry.TAG_LEGACY_ROUTER_VERSION] = legacy
        client.delete_model_version_tag(name, version, registry.TAG_LEGACY_ROUTER_VERSION)


def log_failure_landscape(
    source: ProfileData,
    model_name: str,
    *,
    model_version: str | None = None,
    checkpoint: str | None = None,
    tracking_uri: str | None = None,
    tasks: tuple[str, ...] = (),
    cells: tuple[str, ...] = (),
    config: AnalysisConfig | None = None,
    lm_eval_run: str | Path | None = None,
    progress: Progress | None = _stderr,
) -> LogResult:
    """Log a model version's failure landscape and router to MLflow (see the module docstring).

    Args:
        source: a profile table (a :class:`ProfileTable`, a DataFrame, a CSV/Parquet path) or
            an lm-eval run directory with rescue rates.
        model_name: the registered model (the post-trained checkpoint under evaluation).
        model_version: an existing version; or the number a ``checkpoint`` registration must get.
        checkpoint: URI of the weights, registered as an external model when no version matches.
        tracking_uri: see :func:`lm_failtrace.tracking.resolve_tracking_uri`.
        tasks, cells: restrict the input.
        config: analysis settings; unset columns are the input table's.
        lm_eval_run: the lm-eval run a profile table came from (settings and pass@k).
        progress: receives one-line status messages (stderr by default).

    Returns:
        Where everything went; ``reused`` when the same input was already logged completely for
        this model version (same content hash), in which case nothing new is created.

    Raises:
        InputError: unreachable tracking server, bad input, unknown model version.
    """
    import mlflow

    say = progress or (lambda _msg: None)
    config = (config or AnalysisConfig()).check()
    uri = resolve_tracking_uri(tracking_uri)
    client = tracking_client(uri)
    inp = load_input(source, config.schema, tasks=tasks, cells=cells, lm_eval_run=lm_eval_run)
    # Resolved before hashing: the hash then names the columns actually analysed.
    config = config.resolved(inp.table.schema)
    version_text = code_version()
    digest = content_hash(inp.table, config, version_text)
    experiment = registry.experiment_name(model_name)
    # Before anything is created (an external model too): overrides an ambient MLFLOW_EXPERIMENT_ID.
    use_experiment(client, uri, experiment)
    resolved = registry.resolve_model_version(client, model_name, model_version, checkpoint)
    mv = resolved.version
    router_name = registry.router_name(model_name)
    result = LogResult(uri, experiment, model_name, str(mv.version), router_name, "", "", digest)
    done = registry.find_logged(client, model_name, mv, digest)
    if done is not None:
        say(f"{model_name} version {mv.version} already has this landscape (input {digest[:12]})")
        result.router_version, result.run_id, result.reused = done, mv.tags[registry.TAG_RUN], True
        return result

    title = f"Failure landscape: {model_name} version {mv.version}"
    context = {
        "model": model_name,
        "version": mv.version,
        "source": inp.source,
        "code version": version_text,
        "input sha256": digest,
    }
    landscape = compute_landscape(inp.table, config, title=title, context=context, progress=say)
    result.analysis = landscape.analysis

    run_tags = {
        registry.TAG_HASH: digest,
        registry.TAG_SOURCE_NAME: model_name,
        registry.TAG_SOURCE_VERSION: str(mv.version),
    }
    attempt = _Attempt((model_name, str(mv.version)), router_name)
    try:
        with mlflow.start_run(run_name=f"{model_name} v{mv.version}", tags=run_tags) as run:
            attempt.runs.append(run.info.run_id)
            say(f"logging to run {run.info.run_id} in experiment {experiment}")
            result.task_runs = write_landscape(
                landscape,
                inp,
                config,
                model_id=resolved.model_id,
                run_tags=run_tags,
                started=attempt.runs,
            )
            where = describe.Where(uri, run.info.experiment_id, run.info.run_id)
            router_version = _register_router(client, landscape, attempt, where, run_tags)
            link = registry.router_link(model_name, router_version)
            links = {
                registry.TAG_RUN: run.info.run_id,
                registry.TAG_ROUTER: link,
                registry.TAG_HASH: digest,
            }
            description = describe.model_version_description(
                landscape.analysis,
                inp.pass_at_k,
                model=attempt.model,
                router=(router_name, router_version),
                where=where,
                digest=digest,
            )
            _link_model_version(client, mv, attempt, links, description)
            mlflow.set_tag(registry.TAG_ROUTER, link)
    except BaseException:
        _cleanup(client, attempt)
        raise
    result.run_id, result.router_version = attempt.runs[0], router_version
    say(
        f"registered {router_name} version {router_version}; "
        f"tagged {model_name} version {mv.version}"
    )
    return result
