"""``failtrace demo``: the whole pipeline on the bundled tiny pair (no network, no GPU)."""

from __future__ import annotations

from pathlib import Path

import click

from lm_failtrace.cli._common import echo_json, reports_input_errors
from lm_failtrace.record.backends.seeds import DEFAULT_BASE_SEED


@click.command("demo")
@click.option(
    "--workdir",
    default="failtrace-demo",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the run, the profile table and the MLflow database.",
)
@click.option(
    "--per-mechanism",
    default=12,
    show_default=True,
    type=click.IntRange(1, 25),
    help="Problems per planted failure mechanism (4 mechanisms; at most 25).",
)
@click.option("--trials", default=3, show_default=True, help="Repair trials per unit/operator.")
@click.option(
    "--seed",
    default=DEFAULT_BASE_SEED,
    show_default=True,
    help="Base seed (recording and repair).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@reports_input_errors
def demo(workdir: Path, per_mechanism: int, trials: int, seed: int, as_json: bool) -> None:
    """Run record -> repair -> analyze -> MLflow on the bundled tiny specialist/ancestor pair.

    Records failtrace_arith rollouts through the real lm-eval CLI, measures every repair
    operator on every failure unit, registers the specialist as an external model in a local
    sqlite MLflow database (WORKDIR/mlflow.db) with its failure landscape, report and router,
    aliases both `candidate`, and prints the command that opens the MLflow UI.
    """
    from lm_failtrace.demo import DemoConfig, run_demo

    config = DemoConfig(workdir=workdir, per_mechanism=per_mechanism, trials=trials, seed=seed)
    summary = run_demo(config, lambda msg: click.echo(msg, err=True))
    if as_json:
        echo_json(summary)
        return
    click.echo("")
    if summary["regimes"]:
        mix = ", ".join(f"{k} {v}" for k, v in summary["regimes"].items())
        click.echo(f"failure units by regime: {mix}")
        click.echo(f"router policy (cross-validated selection): {summary['selected_policy']}")
        for verdict in summary["verdicts"]:
            click.echo(f"  - {verdict}")
    if summary.get("mechanisms"):
        _echo_mechanisms(summary["mechanisms"])
    click.echo(f"registered   {summary['model']}  (alias {summary['alias']['alias']})")
    click.echo(f"router       {summary['router']}  (alias {summary['alias']['alias']})")
    click.echo(f"profiles     {summary['profiles']}")
    click.echo(f"MLflow run   {summary['run_id']}  in {summary['tracking_uri']}")
    click.echo("open the MLflow UI on this database with:")
    click.echo(f"  {summary['ui_command']}")
    click.echo(f"then browse to {summary['ui_url']} (Models -> {summary['model'].split()[0]})")


def _echo_mechanisms(agreement: dict) -> None:
    """The planted mechanisms against the routes: ARI, accuracy, and the contingency table."""
    click.echo(
        f"agreement with the planted mechanisms: regimes ARI {agreement['regime_ari']:.2f}, "
        f"{agreement['routes_policy']} routes ARI {agreement['routes_ari']:.2f}; mechanism "
        f"predicted from the features with cross-validated accuracy "
        f"{agreement['accuracy_mean']:.2f} +/- {agreement['accuracy_std']:.2f} "
        f"(majority class {agreement['majority_rate']:.2f})"
    )
    table = agreement["routes_contingency"]
    width = max(len(label) for label in table["labels"])
    click.echo(f"  {'mechanism':<{width}}  " + "  ".join(table["columns"]))
    for label, counts in zip(table["labels"], table["counts"], strict=True):
        cells = "  ".join(f"{n:>{len(c)}}" for n, c in zip(counts, table["columns"], strict=True))
        click.echo(f"  {label:<{width}}  {cells}")
