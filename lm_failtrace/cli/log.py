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
@click.option("--model-name", required=True, help="Registered model name of the checkpoint.")
@click.option("--model-version", help="Existing version (or the number a --checkpoint gets).")
@click.option("--checkpoint", help="URI of the weights: registers them as an external model.")
@click.option("--tracking-uri", help="MLflow tracking URI [MLFLOW_TRACKING_URI, ./mlflow.db].")
@click.option("--task", "tasks", multiple=True, help="Log only this task (repeatable).")
@click.option("--cell", "cells", multiple=True, help="Log only this cell, model|task (repeatable).")
@click.option(
    "--lm-eval-run",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="lm-eval run a profile table came from: its settings and pass@k are logged too.",
)
@click.option("--json", "as_json", is_flag=True, help="Print where everything went as JSON.")
@reports_input_errors
@analysis_options
def log(
    source: Path,
    model_name: str,
    model_version: str | None,
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
    cross-validated router as <NAME>-router, linked to the model version by tags. All or nothing;
    re-running on the same input creates nothing new.

    Example: failtrace log profiles.csv --model-name qwen-sft --checkpoint s3://ckpt/step-900
    """
    from lm_failtrace.tracking import log_failure_landscape

    # MLflow prints "View run ..." links on stdout; keep stdout for our own (JSON) output.
    with contextlib.redirect_stdout(sys.stderr):
        result = log_failure_landscape(
            source,
            model_name,
            model_version=model_version,
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
