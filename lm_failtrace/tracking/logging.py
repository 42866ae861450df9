"""``failtrace log``: one model version's failure landscape into MLflow, all or nothing.

Layout (a stated convention): experiment ``failtrace/<NAME>``; per model version one parent run
``<NAME> v<V>`` holding the pooled analysis, report, figures and the router, with one nested run
per (model version, task) cell holding that cell's metrics and artifacts. Every run takes the
model version's LoggedModel as an input, and the headline metrics are also attached to that
LoggedModel (``model_id=``), so they show on the model's page.

All or nothing, under kill -9 too. Everything is computed before a run exists, and every
object a log attempt creates carries its attempt id (``failtrace.attempt``). The order:

1. the claim on the model version (:mod:`.claims`; a new checkpoint is registered under a claim
   on the checkpoint first), so identical logs run one after the other and the later ones find
   the work done; then recovery (:mod:`.recovery`) finishes or undoes what an interrupted attempt
   left on this version;
2. the runs (params, metrics, datasets, artifacts, the router as a LoggedModel), ended FINISHED;
3. the router version ``NAME-router/R``, created with its tags in one write (its run, input hash
   and the model version it was fitted for, but not yet the source tags that claim it), then its
   description;
4. the commit: the model version's ``failtrace.router`` tag, one write;
5. the rest of the link, which recovery can redo from the router version's tags: the model
   version's ``failtrace.run_id`` and ``failtrace.input_hash``, the router version's source
   tags; then the model version's description and the run's ``failtrace.router`` tag.

A kill before 4 leaves an attempt that recovery rolls back (runs FAILED, router version deleted);
a kill after it leaves a link that recovery completes, and a description that the same log, run
again, writes. No model version ever links a router version that does not exist, and no router
version claims a model version that does not link it. An error (not a kill) runs the same
recovery at once. Metrics attached to the model's LoggedModel cannot be deleted; they name the
run they came from.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import ProfileData, cell_task, write_profiles
from lm_failtrace.record.secrets import redact_text
from lm_failtrace.tracking import claims, describe, recovery, registry
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
) -> dict[str, str]:
    """Log into the active run and one nested run per cell; returns cell -> run id.

    Each run gets params, metrics, the files of :func:`_write_files`, the profiles as the table
    artifact ``profiles.json`` and its cells' profile datasets as inputs (context
    ``evaluation``); the model's LoggedModel (``model_id``) is an input of every run and gets the
    task-prefixed metrics, each cell's with its dataset. Every run carries ``run_tags`` (a log
    attempt's tags, by which recovery finds the runs of an interrupted attempt).
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
            runs[cell] = mlflow.active_run().info.run_id
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


def _register_router(
    client: MlflowClient,
    landscape: Landscape,
    model_id: str,
    model: tuple[str, str],
    where: describe.Where,
    tags: Mapping[str, str],
) -> ModelVersion:
    """Register the router's LoggedModel as ``NAME-router`` and describe the version.

    The version is created with its tags in one write; they say which model version it was
    fitted for but do not claim it as its source yet (that comes after the commit).
    """
    import mlflow

    rname = registry.router_name(model[0])
    registered = mlflow.register_model(f"models:/{model_id}", rname, tags=dict(tags))
    description = describe.router_version_description(
        landscape.router or {},
        landscape.analysis,
        model=model,
        router=(rname, str(registered.version)),
        where=where,
        digest=tags[registry.TAG_HASH],
    )
    client.update_model_version(rname, str(registered.version), description=description)
    return client.get_model_version(rname, str(registered.version))


def _alias_note(model_name: str, mv: ModelVersion) -> str | None:
    """A warning for a linked version with aliases: its router alias does not move with it."""
    aliases = sorted(getattr(mv, "aliases", None) or ())
    if not aliases or not mv.tags.get(registry.TAG_ROUTER):
        return None
    commands = "; ".join(
        f"failtrace promote --model-name {model_name} --version {mv.version} --alias {a}"
        for a in aliases
    )
    return (
        f"warning: {model_name} version {mv.version} has alias {', '.join(aliases)}: it now "
        f"links a new router version, while {registry.router_name(model_name)}'s alias still "
        f"names the old one (`failtrace status` reports it). To move the router alias too: "
        f"{commands}"
    )


@dataclass
class _Attempt:
    """One log attempt: its id, where it logs, the model version, its input and settings."""

    id: str
    uri: str
    model: tuple[str, str]
    digest: str
    inp: LandscapeInput
    config: AnalysisConfig
    model_id: str | None

    @property
    def tags(self) -> dict[str, str]:
        """Tags of every run of this attempt."""
        return {
            registry.TAG_HASH: self.digest,
            registry.TAG_SOURCE_NAME: self.model[0],
            registry.TAG_SOURCE_VERSION: self.model[1],
            registry.TAG_ATTEMPT: self.id,
        }

    def describe_version(
        self, client: MlflowClient, landscape: Landscape, where: describe.Where, router: str
    ) -> None:
        """Write the model version's description (after its link: it names the router)."""
        name, version = self.model
        description = describe.model_version_description(
            landscape.analysis,
            self.inp.pass_at_k,
            model=self.model,
            router=(registry.router_name(name), router),
            where=where,
            digest=self.digest,
        )
        client.update_model_version(name, version, description=description)


def _write_attempt(
    client: MlflowClient,
    attempt: _Attempt,
    landscape: Landscape,
    claim: claims.Claim,
    say: Progress,
) -> tuple[str, dict[str, str], ModelVersion]:
    """Runs, router, commit, link (the module docstring's order); (run id, task runs, router)."""
    import mlflow

    name, version = attempt.model
    with mlflow.start_run(run_name=f"{name} v{version}", tags=attempt.tags) as run:
        run_id = run.info.run_id
        say(f"logging to run {run_id} in experiment {registry.experiment_name(name)}")
        task_runs = write_landscape(
            landscape, attempt.inp, attempt.config, model_id=attempt.model_id,
            run_tags=attempt.tags,
        )  # fmt: skip
        router_tags = {
            registry.TAG_ATTEMPT: attempt.id,
            registry.TAG_RUN: run_id,
            registry.TAG_HASH: attempt.digest,
            registry.TAG_FOR_VERSION: version,
        }
        router_id = log_router(landscape.router, tags=router_tags)
    where = describe.Where(attempt.uri, run.info.experiment_id, run_id)
    rv = _register_router(client, landscape, router_id, attempt.model, where, router_tags)
    if not claim.held():
        raise RuntimeError(
            f"another process took over the claim on {claim.key}; nothing was linked, and the "
            "next failtrace log or status removes what this attempt wrote"
        )
    link = registry.router_link(name, str(rv.version))
    client.set_model_version_tag(name, version, registry.TAG_ROUTER, link)  # the commit
    for step in recovery.finish_link(client, name, client.get_model_version(name, version), rv):
        step.act()
    attempt.describe_version(client, landscape, where, str(rv.version))
    client.set_tag(run_id, registry.TAG_ROUTER, link)
    return run_id, task_runs, rv


def _model_version(
    client: MlflowClient,
    name: str,
    version: str | None,
    checkpoint: str | None,
    attempt: str,
    say: Progress,
) -> registry.ResolvedModel:
    """The model version to log to; a checkpoint is registered under its claim (one version per
    checkpoint however many identical logs run at once)."""
    found = registry.find_model_version(client, name, version, checkpoint)
    if found is not None:
        return registry.ResolvedModel(found, created=False)
    with claims.claimed(client, f"{name} checkpoint {checkpoint}", name, attempt, say):
        return registry.resolve_model_version(client, name, version, checkpoint, attempt)


def _check_request(
    model_name: str, model_version: str | int | None, checkpoint: str | None
) -> str | None:
    """The checks that need no store, made before anything (``mlflow.db`` too) is created;
    returns the version as text."""
    registry.check_model_name(model_name)
    if model_version is not None and not str(model_version).isdigit():
        raise InputError(
            f"a model version is a number, not {model_version!r}", parameter="model_version"
        )
    if model_version is None and not checkpoint:
        raise InputError(
            "give `model_version` (an existing version) or `checkpoint` (to register one)",
            parameter="model_version",
        )
    return None if model_version is None else str(model_version)


def _log_claimed(
    client: MlflowClient,
    attempt: _Attempt,
    experiment_id: str,
    result: LogResult,
    claim: claims.Claim,
    say: Progress,
) -> LogResult:
    """Everything after the claim on the model version is ours: recover, skip or log."""
    name, version = attempt.model
    for note in recovery.recover(client, name, version, experiment_id, live=attempt.id):
        say(f"finishing an interrupted log: {note}")
    mv = client.get_model_version(name, version)
    done = registry.find_logged(client, name, mv, attempt.digest)
    if done is not None:
        result.router_version, result.run_id, result.reused = (
            done.router_version, mv.tags[registry.TAG_RUN], True,
        )  # fmt: skip
    if done is not None and done.described:
        say(f"{name} version {version} already has this landscape (input {attempt.digest[:12]})")
        return result
    context = {
        "model": name,
        "version": version,
        "source": attempt.inp.source,
        "code version": code_version(),
        "input sha256": attempt.digest,
    }
    landscape = compute_landscape(
        attempt.inp.table, attempt.config, title=f"Failure landscape: {name} version {version}",
        context=context, progress=say,
    )  # fmt: skip
    result.analysis = landscape.analysis
    if done is not None:  # linked by an interrupted log of this input, not yet described
        where = describe.Where(attempt.uri, experiment_id, result.run_id)
        attempt.describe_version(client, landscape, where, done.router_version)
        say(f"wrote the description of {name} version {version} that an interrupted log left out")
        return result
    note = _alias_note(name, mv)
    try:
        result.run_id, result.task_runs, rv = _write_attempt(client, attempt, landscape, claim, say)
    except BaseException:
        _undo(client, attempt.model, experiment_id, say)
        raise
    result.router_version = str(rv.version)
    say(f"registered {result.router_name} version {rv.version}; tagged {name} version {version}")
    if note:
        say(note)
    return result


def _undo(client: MlflowClient, model: tuple[str, str], experiment_id: str, say: Progress) -> None:
    """After a failed attempt, under its claim: what recovery does for a dead one, done now."""
    try:
        for note in recovery.recover(client, *model, experiment_id):
            say(f"undoing the failed attempt: {note}")
    except Exception as exc:  # the original error matters more; the next log recovers
        say(f"could not undo the failed attempt ({exc}); the next failtrace log or status will")


def log_failure_landscape(
    source: ProfileData,
    model_name: str,
    *,
    model_version: str | int | None = None,
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
        model_name: the registered model (the post-trained checkpoint under evaluation); any
            name MLflow's registry accepts.
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
        InputError: bad input or model name, unreachable tracking server, unknown model version.
    """
    say = progress or (lambda _msg: None)
    config = (config or AnalysisConfig()).check()
    version_arg = _check_request(model_name, model_version, checkpoint)
    inp = load_input(source, config.schema, tasks=tasks, cells=cells, lm_eval_run=lm_eval_run)
    # Resolved before hashing: the hash then names the columns actually analysed.
    config = config.resolved(inp.table.schema)
    digest = content_hash(inp.table, config, code_version())
    uri = resolve_tracking_uri(tracking_uri)
    client = tracking_client(uri)
    experiment = registry.experiment_name(model_name)
    # Before anything is created (an external model too): overrides an ambient MLFLOW_EXPERIMENT_ID.
    experiment_id = use_experiment(client, uri, experiment)
    attempt_id = uuid.uuid4().hex[:16]
    resolved = _model_version(client, model_name, version_arg, checkpoint, attempt_id, say)
    model = (model_name, str(resolved.version.version))
    attempt = _Attempt(attempt_id, uri, model, digest, inp, config, resolved.model_id)
    result = LogResult(
        redact_text(uri),  # printed by `log --json`: never a password in a URL
        experiment,
        model_name,
        model[1],
        registry.router_name(model_name),
        "",
        "",
        digest,
    )
    with claims.claimed(
        client, f"{model_name} version {model[1]}", model_name, attempt_id, say
    ) as claim:
        return _log_claimed(client, attempt, experiment_id, result, claim, say)
