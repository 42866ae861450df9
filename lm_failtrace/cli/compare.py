"""``failtrace compare``: how a new checkpoint's failure landscape differs from the last one's."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lm_failtrace.cli._common import analysis_options, echo_json, reports_input_errors

if TYPE_CHECKING:
    from lm_failtrace.analysis import AnalysisConfig


def _check_usage(
    tables: tuple[Path, ...],
    model_name: str | None,
    versions: tuple[int, int] | None,
    aliases: tuple[str, str] | None,
    log: bool,
) -> None:
    if model_name is None:
        if len(tables) != 2:
            raise click.UsageError("give two profile tables (OLD NEW), or --model-name")
        if versions or aliases or log:
            raise click.UsageError("--versions, --aliases and --log need --model-name")
        return
    if tables:
        raise click.UsageError("give two profile tables or --model-name, not both")
    if (versions is None) == (aliases is None):
        raise click.UsageError("with --model-name, give --versions V1 V2 or --aliases A1 A2")


def _from_files(
    tables: tuple[Path, ...], config: AnalysisConfig, tasks: tuple[str, ...]
) -> dict[str, Any]:
    from lm_failtrace.analysis import CompareSide, compare

    old, new = tables
    old_label, new_label = _short_labels(old, new)
    return compare(
        old,
        new,
        config,
        tasks=tasks,
        old_side=CompareSide(label=old_label, details={"path": str(old)}),
        new_side=CompareSide(label=new_label, details={"path": str(new)}),
    )


def _short_labels(old: Path, new: Path) -> tuple[str, str]:
    """The shortest trailing parts of the two paths that tell them apart (``v1.csv``, or
    ``old/profiles.parquet`` beside ``new/profiles.parquet``): column headers stay readable."""
    for depth in range(1, max(len(old.parts), len(new.parts)) + 1):
        labels = (str(Path(*old.parts[-depth:])), str(Path(*new.parts[-depth:])))
        if labels[0] != labels[1]:
            return labels
    return str(old), str(new)


@click.command()
@click.argument(
    "tables", nargs=-1, metavar="[OLD NEW]", type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--model-name", help="Registered model whose two versions to compare.")
@click.option(
    "--versions",
    nargs=2,
    type=click.IntRange(min=1),
    metavar="OLD NEW",
    help="Two versions of --model-name, baseline first.",
)
@click.option(
    "--aliases", nargs=2, metavar="OLD NEW", help="Two aliases of --model-name, baseline first."
)
@click.option("--tracking-uri", help="MLflow tracking URI [MLFLOW_TRACKING_URI, ./mlflow.db].")
@click.option("--task", "tasks", multiple=True, help="Compare only this task (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the comparison as a self-contained HTML page (e.g. compare.html). An existing "
    "file is replaced only by a successful run.",
)
@click.option(
    "--log",
    is_flag=True,
    help="Attach compare.html and compare.json to the newer version's run (with --model-name).",
)
@reports_input_errors
@analysis_options
def compare(
    tables: tuple[Path, ...],
    model_name: str | None,
    versions: tuple[int, int] | None,
    aliases: tuple[str, str] | None,
    tracking_uri: str | None,
    tasks: tuple[str, ...],
    as_json: bool,
    output: Path | None,
    log: bool,
    config: AnalysisConfig,
) -> None:
    """Compare two failure landscapes: two versions of a registered model, or two tables.

    OLD is the baseline (e.g. the champion), NEW the candidate. Per task, side by side: regime
    shares and mean rescue per operator with intervals ("too few units" below 10 units), the
    policy the honest protocol selects, and pass@k when the versions' logged runs have it. The
    problems failing in both are paired by task and problem id: a transition table counts how
    many moved between regimes (rows: old regime, columns: new), problems that stopped or
    started failing are counted apart, and the change in rescue per operator gets a paired
    interval and an exact sign test. Two tables of different models are compared (and the
    output says so); different tasks are an error unless --task picks shared ones.

    Nothing is written unless asked: -o writes the HTML page, --log attaches compare.html and
    compare.json to the newer (second) version's run under compare/vs_v<OLD>/, only after
    everything else succeeded.

    \b
    Examples:
      failtrace compare --model-name my-sft --versions 3 4 -o compare.html
      failtrace compare --model-name my-sft --aliases champion candidate --log
      failtrace compare old/profiles.parquet new/profiles.parquet --json
    """
    _check_usage(tables, model_name, versions, aliases, log)
    if output is not None:
        from lm_failtrace.outputs import check_outputs

        check_outputs([("output", output)], tables)
    comparison = None
    # MLflow prints progress on stdout; keep stdout for our own (JSON) output.
    with contextlib.redirect_stdout(sys.stderr):
        if model_name is None:
            document = _from_files(tables, config, tasks)
        else:
            from lm_failtrace.tracking.compare import compare_versions

            comparison = compare_versions(
                model_name,
                versions=(str(versions[0]), str(versions[1])) if versions else None,
                aliases=aliases,
                tracking_uri=tracking_uri,
                config=config,
                tasks=tasks,
            )
            document = comparison.document
        html = None
        if output is not None or log:
            from lm_failtrace.report.compare import render_compare

            html = render_compare(document)
        extra: dict[str, Any] = {}
        if output is not None:
            from lm_failtrace.outputs import write_atomic

            write_atomic(output, html, parameter="output")
            extra["html"] = str(output)
        if log:
            from lm_failtrace.tracking.compare import log_comparison

            extra["logged"] = log_comparison(comparison, html)
    _report(document, extra, as_json)


def _report(document: dict[str, Any], extra: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json({**document, **extra})
        return
    from lm_failtrace.report.compare import compare_text

    click.echo(compare_text(document))
    if "html" in extra:
        click.echo(f"\nwrote {extra['html']}")
    if "logged" in extra:
        logged = extra["logged"]
        click.echo(f"logged {logged['html']} and {logged['json']} to run {logged['run_id']}")
