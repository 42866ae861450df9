"""``failtrace log``: a model version's failure landscape and router into MLflow."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lm_failtrace.cli._common import analysis_options, echo_json, reports_input_errors

if TYPE_CHECKING:
    from lm_failtrace.analysis import AnalysisConfig


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model-name",
    required=True,
    help="Registered model name of the checkpoint (any name MLflow accepts, e.g. qwen2.5-sft).",
)
@click.option(
    "--model-version",
    type=click.IntRange(min=1),
    help="Existing version (or the number a --checkpoint gets).",
)
@click.option("--checkpoint", help="URI of the weights: registers them as an external model.")
@click.option("--tracking-uri", help="MLflow tracking URI [MLFLOW_TRACKING_URI, ./mlflow.db].")
@click.option("--task", "tasks", multiple=True, help="Log only this task (repeatable).")
@click.option("--cell", "cells", multiple=True, help="Log only this cell, model|task (repeatable).")
@click.option(
    "--lm-eval-run",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="lm-eval run folder (--output_path, with results_<timestamp>.json) a profile table "
    "came from: its settings and pass@k are logged too.",
)
@click.option("--json", "as_json", is_flag=True, help="Print where everything went as JSON.")
@reports_input_errors
@analysis_options
def log(
    source: Path,
    model_name: str,
    model_version: int | None,
    checkpoint: str | None,
    tracking_uri: str | None,
    tasks: tuple[str, ...],
    cells: tuple[str, ...],
    lm_eval_run: Path | None,
    as_json: bool,
    config: AnalysisConfig,
) -> None:
    """Log the failure landscape of one registered model version to MLflow.

    SOURCE is a profile table (CSV/Parquet, with rescue rates) or an lm-eval run directory whose
    profiles carry them. Creates, in experiment failtrace/<NAME>, a run per model version with
    one nested run per task (metrics, profile table, analysis JSON, figures, report.html),
    attaches the headline metrics to the model version's LoggedModel, and registers the
    cross-validated router as <NAME>-router, linked to the model version by tags.

    All or nothing, also when killed: what an interrupted log left is finished or undone by the
    next log of that version (or by `failtrace status`). Identical logs running at once wait for
    each other and create one version, one router and one run; re-running on the same input
    creates nothing new. A version that carries an alias keeps it, and log says which
    `failtrace promote` moves the router's alias along.

    Inputs are checked before MLflow is touched: --lm-eval-run must be an lm-eval run folder,
    and a local sqlite database (the default ./mlflow.db) may not be, or lie inside, an input.

    Example: failtrace log profiles.csv --model-name qwen-sft --checkpoint s3://ckpt/step-900
    """
    from lm_failtrace.tracking import log_failure_landscape

    _check_inputs(source, lm_eval_run, tracking_uri)

    # MLflow prints "View run ..." links on stdout; keep stdout for our own (JSON) output.
    with contextlib.redirect_stdout(sys.stderr):
        result = log_failure_landscape(
            source,
            model_name,
            model_version=None if model_version is None else str(model_version),
            checkpoint=checkpoint,
            tracking_uri=tracking_uri,
            tasks=tasks,
            cells=cells,
            config=config,
            lm_eval_run=lm_eval_run,
            progress=lambda message: click.echo(f"[log] {message}", err=True),
        )
    if as_json:
        echo_json(asdict(result))
        return
    state = "already logged" if result.reused else "logged"
    click.echo(
        f"{state}: {result.model_name} version {result.model_version} -> run {result.run_id} "
        f"({result.experiment}), router {result.router_name} version {result.router_version}"
    )


def _check_inputs(source: Path, lm_eval_run: Path | None, tracking_uri: str | None) -> None:
    """What can be checked before MLflow is touched (nothing is created when it fails)."""
    from lm_failtrace.outputs import check_outputs
    from lm_failtrace.rollouts import check_lm_eval_run, input_paths
    from lm_failtrace.tracking.uri import resolve_tracking_uri, sqlite_path

    inputs = input_paths(source)
    if lm_eval_run is not None:
        check_lm_eval_run(lm_eval_run)
        inputs.append(lm_eval_run)
    database = sqlite_path(resolve_tracking_uri(tracking_uri))
    if database is not None:
        check_outputs([("tracking_uri", database)], inputs)
