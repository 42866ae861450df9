"""``failtrace repair``: apply test-time operators to a run's failure units (rescue rates)."""

from __future__ import annotations

from pathlib import Path

import click

from lm_failtrace.cli._common import echo_json, parse_pairs, reports_input_errors
from lm_failtrace.record.backends.seeds import DEFAULT_BASE_SEED


def parse_model_args(value: str | None) -> dict[str, str]:
    """lm-eval's ``key=value,key=value`` model-argument syntax."""
    if not value:
        return {}
    pairs = [part for part in value.split(",") if part.strip()]
    bad = [i for i, p in enumerate(pairs, start=1) if "=" not in p]
    if bad:  # the part itself is not shown: it may be a secret missing its name
        raise click.BadParameter(
            f"expected key=value pairs; part {bad[0]} has no '='", param_hint="--model-args"
        )
    return dict(part.strip().split("=", 1) for part in pairs)


@click.command("repair")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Profile table with rescue rates to write (.csv or .parquet), outside RUN_DIR. An "
    "existing file is replaced only by a successful run.",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Discard the checkpoint OUTPUT.partial.jsonl and start over instead of resuming.",
)
@click.option(
    "--operators",
    default=None,
    help="Comma-separated operators (default: all: retry, sparse_steer, sparse_steer_random, "
    "local_temp, dense_steer, budget, temp_shift). Steering operators need an ancestor.",
)
@click.option(
    "--attempts",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="Attempts per trial (best of A).",
)
@click.option(
    "--trials",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Trials per unit and operator.",
)
@click.option(
    "--seed", default=DEFAULT_BASE_SEED, show_default=True, help="Base seed of the attempts."
)
@click.option(
    "--model-args",
    default=None,
    help="Override recorded model arguments, e.g. pretrained=PATH,ancestor=PATH (failtrace-hf) "
    "or base_url=URL,ancestor_url=URL (failtrace-local-completions).",
)
@click.option(
    "--include-path",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of task YAMLs (for make-task variants); repeatable.",
)
@click.option(
    "--rescue",
    "rescue_items",
    multiple=True,
    metavar="NAME=OTHER",
    help="Also add rescue column NAME from another run of the same problems (anything "
    "`failtrace profile` reads), as `failtrace profile --rescue` does; repeatable.",
)
@click.option(
    "--match-task",
    "task_items",
    multiple=True,
    metavar="TASK=OTHER_TASK",
    help="Match the run's task TASK with OTHER_TASK in the --rescue runs; repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@reports_input_errors
def repair(
    run_dir: Path,
    output: Path,
    restart: bool,
    operators: str | None,
    attempts: int,
    trials: int,
    seed: int,
    model_args: str | None,
    include_path: tuple[Path, ...],
    rescue_items: tuple[str, ...],
    task_items: tuple[str, ...],
    as_json: bool,
) -> None:
    """Measure each operator's rescue rate on the failure units of a recorded run.

    RUN_DIR is an lm-eval output directory written by `failtrace eval` with a failtrace backend
    (failtrace-hf for all operators; failtrace-local-completions for the black-box ones). Each
    operator gets TRIALS trials of ATTEMPTS fresh attempts per unit, judged by the task's own
    scorer; the rescue rate is the share of trials with a correct attempt, and
    <operator>_tokens the mean tokens generated per trial. The result is the profile table
    with those columns, for `failtrace analyze`. An interrupted repair resumes from
    OUTPUT.partial.jsonl without redoing finished units (--restart discards it); a checkpoint
    made with other settings, or with a damaged line, is refused (exit 2, naming the line).
    With --rescue NAME=OTHER, columns from other runs of the same problems are added as
    `failtrace profile --rescue` adds them (docs/method.md section 9).
    """
    from lm_failtrace.repair.runner import DEFAULT_OPERATORS, RepairConfig, repair_run

    ops = (
        tuple(o.strip() for o in operators.split(",") if o.strip())
        if operators
        else DEFAULT_OPERATORS
    )
    config = RepairConfig(operators=ops, attempts=attempts, trials=trials, seed=seed)
    rescue = parse_pairs(rescue_items, "--rescue", "NAME=OTHER")
    table = repair_run(
        run_dir,
        output,
        config,
        model_args=parse_model_args(model_args),
        include_path=include_path,
        progress=True,
        restart=restart,
        rescue=rescue,
        match_task=parse_pairs(task_items, "--match-task", "TASK=OTHER_TASK"),
    )
    ops = (*ops, *rescue)  # the summary shows the columns from other runs too
    summary = {
        "output": str(output),
        "units": len(table),
        "mean_rescue": {op: float(table[op].mean()) for op in ops} if len(table) else {},
        "mean_tokens_per_trial": {op: float(table[f"{op}_tokens"].mean()) for op in ops}
        if len(table)
        else {},
    }
    if as_json:
        echo_json(summary)
        return
    click.echo(f"wrote {output}: {summary['units']} failure units")
    for op in ops:
        rescue = summary["mean_rescue"].get(op, float("nan"))
        tokens = summary["mean_tokens_per_trial"].get(op, float("nan"))
        click.echo(f"  {op:<20} mean rescue {rescue:.3f}   tokens/trial {tokens:.1f}")
