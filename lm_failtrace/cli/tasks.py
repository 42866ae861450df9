"""``failtrace tasks-path`` and ``failtrace make-task``: getting failtrace tasks into lm-eval."""

from __future__ import annotations

from pathlib import Path

import click

from lm_failtrace.cli._common import echo_json, reports_input_errors


@click.command("tasks-path")
def tasks_path() -> None:
    """Print the folder of the installed failtrace task YAMLs, for lm-eval's --include_path.

    Example: failtrace eval --tasks failtrace_arith --include_path "$(failtrace tasks-path)" ...
    """
    from lm_failtrace.record.tasks import tasks_dir

    click.echo(str(tasks_dir()))


@click.command("make-task")
@click.argument("base_task")
@click.option(
    "-o",
    "--output-dir",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write <name>.yaml into (pass it to lm-eval as --include_path). An existing "
    "<name>.yaml is replaced only by a successful run.",
)
@click.option(
    "--name",
    help="Name of the new task: letters, digits, _, - and . (never a path) "
    "[default: BASE_TASK_failtrace].",
)
@click.option(
    "--force",
    is_flag=True,
    help="Allow a --name that lm-eval or failtrace already gives a task (the variant shadows it).",
)
@click.option("--repeats", default=16, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--temperature",
    default=0.6,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Sampling temperature (a finite number; 0 = greedy).",
)
@click.option(
    "--max-gen-toks",
    type=click.IntRange(min=1),
    help="Token limit per rollout [default: the base task's, else 256].",
)
@click.option(
    "--id-field",
    help="Document field holding a stable problem id [default: hash of the whole document].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@reports_input_errors
def make_task(
    base_task: str,
    out_dir: Path,
    name: str | None,
    force: bool,
    repeats: int,
    temperature: float,
    max_gen_toks: int | None,
    id_field: str | None,
    as_json: bool,
) -> None:
    """Write a failtrace variant of the lm-eval task BASE_TASK.

    BASE_TASK must be a built-in generate_until task scored by exact_match after its filters. The
    variant keeps its data, prompt, filters and answer scoring, and adds repeats, sampling and
    full-rollout recording: every repeat is scored (pass@1, pass@4, pass@N, maj@N, outcome
    features) and logged in the samples file as failtrace_rollouts.

    Example: failtrace make-task gsm8k -o my_tasks/ --repeats 16 && failtrace eval ...
    --tasks gsm8k_failtrace --include_path my_tasks/
    """
    from lm_failtrace.record.make_task import write_variant

    click.echo(f"indexing lm-eval's tasks to find {base_task!r} ...", err=True)
    path = write_variant(
        base_task,
        out_dir,
        name=name,
        repeats=repeats,
        temperature=temperature,
        max_gen_toks=max_gen_toks,
        id_field=id_field,
        force=force,
    )
    task = path.stem
    if as_json:
        echo_json({"path": str(path), "task": task, "base_task": base_task})
    else:
        click.echo(str(path))
