"""``failtrace profile``: lm-eval output (or any rollout table) -> failure-profile table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lm_failtrace.cli._common import echo_json, reports_input_errors

if TYPE_CHECKING:
    from lm_failtrace.profiles.build import ProfileBuild

#: Per-cell means over failure units shown in the summary (regime-free: no rescue rates needed).
SUMMARY_MEANS: tuple[str, ...] = (
    "answer_entropy",
    "mode_share",
    "truncation_rate",
    "no_answer_rate",
    "mean_generated_tokens",
)


@click.command("profile")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the profile table here (.csv, or .parquet/.pq); outside the input's run folder. "
    "An existing file is replaced only by a successful run.",
)
@click.option(
    "--all-runs",
    is_flag=True,
    help="In an output directory, read every run of each task (pooled per problem), "
    "not only the newest.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@reports_input_errors
def profile(input_path: Path, output: Path | None, all_runs: bool, as_json: bool) -> None:
    """Turn recorded rollouts into the failure-profile table (one row per failure unit).

    INPUT is one of:

    \b
    - an lm-eval output directory (--output_path DIR of a run with --log_samples): DIR or
      DIR/<model_name>; per task the newest run is read, from its side-car
      rollouts_<task>_<ts>.jsonl when present, else from the samples log of a failtrace task;
    - one samples_<task>_<ts>.jsonl or rollouts_<task>_<ts>.jsonl file;
    - a generic rollout table (.jsonl or .parquet) with columns model, task, problem_id,
      answer, correct and optional repeat, generated_tokens, finish_reason, spread,
      concentration, logit_dispersion (text is ignored).

    A failure unit is a (model, task, problem) with at least one failed rollout; its cell is
    "model|task". Columns: n_rollouts, n_failed_rollouts, pass_rate, the outcome features of
    docs/method.md section 3 (answer_entropy, mode_share, truncation_rate), no_answer_rate, mean and
    max generated tokens, and spread/concentration/logit_dispersion when the rollouts carry
    them. Unknown finish reasons or token counts give NaN (empty), never a guess.

    Prints a summary per cell (with --json, as JSON). Exit codes: 0 ok, 2 bad input (the
    message names file and line; no output is written, an existing one is left as it was), 1
    internal error.
    """
    from lm_failtrace.outputs import check_outputs
    from lm_failtrace.profiles import check_table_path, write_profiles
    from lm_failtrace.profiles.build import build_profiles
    from lm_failtrace.rollouts import input_paths

    if output is not None:
        check_outputs([("output", output)], input_paths(input_path))
        check_table_path(output)
    built = build_profiles(
        input_path, all_runs=all_runs, progress=lambda msg: click.echo(msg, err=True)
    )
    if output is not None:
        write_profiles(built.frame, output, built.schema)
    summary = summarize(built, output)
    if as_json:
        echo_json(summary)
    else:
        _echo_summary(summary)


def summarize(built: ProfileBuild, output: Path | None = None) -> dict[str, Any]:
    """Counts per cell and the means of the outcome features over its failure units."""
    from lm_failtrace.profiles import cell_name

    frame = built.frame
    cells = []
    for (model, task), counts in built.cells.items():
        units = frame[(frame["model"] == model) & (frame["task"] == task)]
        cell: dict[str, Any] = {
            "cell": cell_name(model, task),
            "problems": counts.problems,
            "repeats": counts.repeats,
            "pass_at_1": counts.pass_at_1,
            "failure_units": len(units),
        }
        for col in SUMMARY_MEANS:
            cell[col] = float(units[col].mean()) if len(units) else math.nan
        cells.append(cell)
    return {
        "input": [str(p) for p in built.sources],
        "output": None if output is None else str(output),
        "rollouts": built.n_rollouts,
        "problems": built.n_units,
        "failure_units": len(frame),
        "cells": cells,
    }


def _echo_summary(summary: dict[str, Any]) -> None:
    """A short, aligned text table (NaN = unknown, e.g. a backend without finish reasons)."""
    where = f"; table written to {summary['output']}" if summary["output"] else ""
    click.echo(
        f"{summary['rollouts']:,} rollouts, {summary['problems']:,} problems, "
        f"{summary['failure_units']:,} failure units in {len(summary['cells'])} cell(s){where}"
    )
    from lm_failtrace.report.tables import text_table

    header = ["cell", "problems", "N", "pass@1", "failure_units", *SUMMARY_MEANS]
    rows = [
        [
            c["cell"],
            c["problems"],
            c["repeats"],
            c["pass_at_1"],
            c["failure_units"],
            *(c[col] for col in SUMMARY_MEANS),
        ]
        for c in summary["cells"]
    ]
    click.echo(text_table(header, rows))
    if summary["cells"]:
        click.echo("(feature columns are means over each cell's failure units)")
