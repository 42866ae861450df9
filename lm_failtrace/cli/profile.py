"""``failtrace profile``: lm-eval output, Inspect logs or any rollout table -> profile table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lm_failtrace.cli._common import echo_json, parse_pairs, reports_input_errors

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
@click.option(
    "--rescue",
    "rescue_items",
    multiple=True,
    metavar="NAME=OTHER",
    help="Add rescue column NAME: the pass rate, on each failure unit's problem, of OTHER, "
    "another run of the same problems (any INPUT this command accepts: another setting, "
    "another model), and NAME_tokens, its mean generated tokens per rollout there. Repeatable. "
    "Problems OTHER lacks are left empty and counted. Without --rescue retry=..., retry's "
    "rescue is estimated from INPUT's own rollouts (docs/method.md section 9).",
)
@click.option(
    "--match-task",
    "task_items",
    multiple=True,
    metavar="TASK=OTHER_TASK",
    help="Match INPUT's task TASK with OTHER_TASK in the --rescue runs (a task named otherwise "
    "there). Repeatable.",
)
@click.option(
    "--ladder",
    is_flag=True,
    help="INPUT is a folder of Inspect logs of one model at several settings of one knob "
    "(effort, reasoning_effort, reasoning_tokens or max_tokens): the lowest setting is profiled, "
    "each higher one becomes a rescue column named <knob>_<value>.",
)
@click.option(
    "--scorer",
    default=None,
    help="Inspect logs: the scorer whose value decides correctness [the log's first scorer].",
)
@click.option(
    "--score-value",
    "value_items",
    multiple=True,
    metavar="VALUE=1|0",
    help="Inspect logs: count score VALUE as correct (1) or incorrect (0), for values other "
    "than C/I/N and 1/0 (e.g. --score-value P=0). Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@reports_input_errors
def profile(
    input_path: Path,
    output: Path | None,
    all_runs: bool,
    rescue_items: tuple[str, ...],
    task_items: tuple[str, ...],
    ladder: bool,
    scorer: str | None,
    value_items: tuple[str, ...],
    as_json: bool,
) -> None:
    """Turn recorded rollouts into the failure-profile table (one row per failure unit).

    INPUT is one of:

    \b
    - an lm-eval output directory (--output_path DIR of a run with --log_samples): DIR or
      DIR/<model_name>; per task the newest run is read, from its side-car
      rollouts_<task>_<ts>.jsonl when present, else from the samples log of a failtrace task;
    - one samples_<task>_<ts>.jsonl or rollouts_<task>_<ts>.jsonl file;
    - a generic rollout table (.jsonl or .parquet) with columns model, task, problem_id,
      answer, correct and optional repeat, generated_tokens, finish_reason, spread,
      concentration, logit_dispersion (text is ignored);
    - an Inspect AI eval log (.eval or .json) or a folder of them (the [inspect] extra): one
      rollout per (sample id, epoch); the model is named with its effort/budget settings
      (model@reasoning_effort=high); samples that errored without a score are counted, not
      read.

    A failure unit is a (model, task, problem) with at least one failed rollout; its cell is
    "model|task". Columns: n_rollouts, n_failed_rollouts, pass_rate, the outcome features of
    docs/method.md section 3 (answer_entropy, mode_share, truncation_rate), no_answer_rate, mean and
    max generated tokens, and spread/concentration/logit_dispersion when the rollouts carry
    them. Unknown finish reasons or token counts give NaN (empty), never a guess. With --rescue
    or --ladder: one rescue column per other run and retry (estimated unless given), each with
    its _tokens column, for `failtrace analyze`.

    Prints a summary per cell (with --json, as JSON). Exit codes: 0 ok, 2 bad input (the
    message names file and line; no output is written, an existing one is left as it was), 1
    internal error.

    \b
    Examples:
      failtrace profile runs/ --rescue long=runs_long/ -o t.parquet
      failtrace profile logs/ --ladder -o t.parquet
    """
    from lm_failtrace.outputs import check_outputs
    from lm_failtrace.profiles import check_table_path, write_profiles
    from lm_failtrace.profiles.build import build_profiles
    from lm_failtrace.rollouts import input_paths

    rescue = parse_pairs(rescue_items, "--rescue", "NAME=OTHER")
    match_task = parse_pairs(task_items, "--match-task", "TASK=OTHER_TASK")
    score_values = _score_values(value_items)
    if output is not None:
        inputs = [p for path in (input_path, *rescue.values()) for p in input_paths(path)]
        check_outputs([("output", output)], inputs)
        check_table_path(output)
    built = build_profiles(
        input_path,
        all_runs=all_runs,
        progress=lambda msg: click.echo(msg, err=True),
        scorer=scorer,
        score_values=score_values,
        rescue=rescue,
        match_task=match_task,
        ladder=ladder,
    )
    if output is not None:
        write_profiles(built.frame, output, built.schema)
    summary = summarize(built, output)
    if as_json:
        echo_json(summary)
    else:
        _echo_summary(summary)


def _score_values(items: tuple[str, ...]) -> dict[str, bool]:
    """``--score-value VALUE=1|0`` as value -> correct."""
    values = parse_pairs(items, "--score-value", "VALUE=1|0")
    for value, meaning in values.items():
        if meaning not in ("0", "1"):
            raise click.BadParameter(
                f"{value}={meaning}: say 1 (correct) or 0 (incorrect)", param_hint="--score-value"
            )
    return {value: meaning == "1" for value, meaning in values.items()}


def summarize(built: ProfileBuild, output: Path | None = None) -> dict[str, Any]:
    """Counts per cell, the means of the outcome features over its failure units, and what
    each rescue column holds."""
    from dataclasses import asdict

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
            "errored_samples": counts.errored,
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
        "errored_samples": sum(c.errored for c in built.cells.values()),
        "cells": cells,
        "rescue": [asdict(column) for column in built.rescue],
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
    errored = [
        f"{c['cell']} {c['errored_samples']}" for c in summary["cells"] if c["errored_samples"]
    ]
    if errored:
        click.echo(f"Samples that errored without a score (not rollouts): {', '.join(errored)}")
    if summary["rescue"]:
        _echo_rescue(summary["rescue"], text_table)


def _echo_rescue(columns: list[dict[str, Any]], text_table: Any) -> None:
    """One line per rescue column: where it comes from, units matched and missing, means."""
    rows = [
        [
            c["name"],
            "estimated from INPUT (leave-one-out)" if c["estimated"] else ", ".join(c["inputs"]),
            c["n_units"],
            c["n_missing"],
            c["mean"],
            c["mean_tokens"],
        ]
        for c in columns
    ]
    header = ["rescue column", "from", "units", "missing", "mean rescue", "tokens/rollout"]
    click.echo("Rescue columns (over the failure units; missing: problem not in that run):")
    click.echo(text_table(header, rows))
