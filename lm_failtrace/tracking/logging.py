"""``failtrace log``: one model version's failure landscape into MLflow, all or nothing.

Layout (a stated convention): experiment ``failtrace/<NAME>``; per model version one parent run
``<NAME> v<V>`` holding the pooled analysis, report, figures and the router, with one nested run
per (model version, task) cell holding that cell's metrics and artifacts. Every run takes the
model version's LoggedModel as an input, and the headline metrics are also attached to that
LoggedModel (``model_id=``), so they show on the model's page.

Order (why it is all or nothing): analysis, router, figures and report are computed before any run
exists; runs, metrics and artifacts are written next; the router is logged as a LoggedModel;
only then is it registered as ``NAME-router`` (its link tags set in the same call) and, last, the
model version's link tags are set. Any failure marks every run of this attempt FAILED, deletes a
router version it created, restores the model version's previous link tags and deletes the
unregistered router LoggedModel, so no tag or version ever points at incomplete results.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.profiles import ProfileData, write_profiles
from lm_failtrace.tracking import registry
from lm_failtrace.tracking.inputs import LandscapeInput, code_version, content_hash, load_input
from lm_failtrace.tracking.landscape import Landscape, compute_landscape
from lm_failtrace.tracking.metrics import cell_metrics, flat_params, metric_name, pooled_metrics
from lm_failtrace.tracking.router_model import log_router
from lm_failtrace.tracking.uri import resolve_tracking_uri, tracking_client, use_experiment

if TYPE_CHECKING:
    from mlflow import MlflowClient

Progress = Callable[[str], None]


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
    """Metrics per cell (its section plus the task's pass@k from lm-eval) and ``pooled``."""
    out = {}
    for cell, section in landscape.analysis["cells"].items():
        task = cell.split("|", 1)[-1]
        passk = {metric_name(k): v for k, v in inp.pass_at_k.get(task, {}).items()}
        out[cell] = {**cell_metrics(section), **passk}
    out["pooled"] = pooled_metrics(landscape.analysis)
    return out


def model_metrics(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """One flat dict for the model's LoggedModel: cell metrics prefixed by task, plus pooled."""
    out = {
        metric_name(cell.split("|", 1)[-1], key): value
        for cell, values in metrics.items()
        if cell != "pooled"
        for key, value in values.items()
    }
    out.update(metrics["pooled"])
    return out


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

    Run ids are appended to ``started`` as soon as they exist, so a caller can mark them FAILED.
    """
    import mlflow
    from mlflow.entities import LoggedModelInput

    client = mlflow.MlflowClient()
    parent = mlflow.active_run().info.run_id
    params = _run_params(inp, config, code_version())
    models = [LoggedModelInput(model_id)] if model_id else None
    metrics = headline_metrics(landscape, inp)
    runs = {}
    for cell in landscape.analysis["cells"]:
        task = cell.split("|", 1)[-1]
        with mlflow.start_run(
            run_name=cell, nested=True, tags={**run_tags, "failtrace.cell": cell}
        ):
            run_id = mlflow.active_run().info.run_id
            started.append(run_id)
            runs[cell] = run_id
            mlflow.log_params({**params, "failtrace.task": task})
            mlflow.log_metrics(metrics[cell])
            if models:
                client.log_inputs(run_id, models=models)
            with tempfile.TemporaryDirectory() as tmp:
                _write_files(Path(tmp), landscape, cell)
                mlflow.log_artifacts(tmp)
    mlflow.log_params(params)
    if models:
        client.log_inputs(parent, models=models)
    with tempfile.TemporaryDirectory() as tmp:
        _write_files(Path(tmp), landscape, None)
        mlflow.log_artifacts(tmp)
    mlflow.log_metrics(model_metrics(metrics), model_id=model_id)
    mlflow.set_tag("failtrace.task_runs", ",".join(runs.values()))
    return runs


def _cleanup(
    client: MlflowClient,
    started: list[str],
    router_name: str,
    router_version: str | None,
    router_model_id: str | None,
    model: tuple[str, str],
    old_tags: dict[str, str | None] | None,
) -> None:
    """Undo a failed attempt as far as the store allows; each step is tried independently."""
    steps: list[tuple[str, Callable[[], Any]]] = [
        (f"mark run {r} FAILED", lambda r=r: client.set_terminated(r, "FAILED")) for r in started
    ]
    if old_tags is not None:
        for key, value in old_tags.items():
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
    if router_version is not None:
        steps.append(
            (
                f"delete {router_name} version {router_version}",
                lambda: client.delete_model_version(router_name, router_version),
            )
        )
    if router_model_id is not None:
        steps.append(
            (
                f"delete router model {router_model_id}",
                lambda: client.delete_logged_model(router_model_id),
            )
        )
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # keep undoing the rest; the original error is re-raised
            _stderr(f"cleanup: could not {what}: {exc}")


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
    started: list[str] = []
    router_version = router_model_id = None
    old_tags: dict[str, str | None] | None = None
    try:
        with mlflow.start_run(run_name=f"{model_name} v{mv.version}", tags=run_tags) as run:
            started.append(run.info.run_id)
            say(f"logging to run {run.info.run_id} in experiment {experiment}")
            result.task_runs = write_landscape(
                landscape,
                inp,
                config,
                model_id=resolved.model_id,
                run_tags=run_tags,
                started=started,
            )
            router_tags = {**run_tags, registry.TAG_RUN: run.info.run_id}
            router_model_id = log_router(landscape.router, tags=router_tags)
            registered = mlflow.register_model(
                f"models:/{router_model_id}", router_name, tags=router_tags
            )
            router_version = str(registered.version)
            links = {
                registry.TAG_RUN: run.info.run_id,
                registry.TAG_ROUTER_VERSION: router_version,
                registry.TAG_HASH: digest,
            }
            old_tags = {k: mv.tags.get(k) for k in links}
            for key, value in links.items():
                client.set_model_version_tag(model_name, mv.version, key, value)
            mlflow.set_tag("failtrace.router_version", router_version)
    except BaseException:
        _cleanup(
            client,
            started,
            router_name,
            router_version,
            router_model_id,
            (model_name, str(mv.version)),
            old_tags,
        )
        raise
    result.run_id, result.router_version = started[0], router_version
    say(
        f"registered {router_name} version {router_version}; "
        f"tagged {model_name} version {mv.version}"
    )
    return result
