"""``failtrace status``: per alias, the model version, its router version and their consistency."""

from __future__ import annotations

import contextlib
import sys

import click

from lm_failtrace.cli._common import echo_json, reports_input_errors


@click.command()
@click.option("--model-name", required=True, help="Registered model name.")
@click.option("--tracking-uri", help="MLflow tracking URI [MLFLOW_TRACKING_URI, ./mlflow.db].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@reports_input_errors
def status(model_name: str, tracking_uri: str | None, as_json: bool) -> None:
    """List the aliases of a model and its router; say which are inconsistent.

    First finishes or undoes what an interrupted `failtrace log` left (closes its runs, deletes
    router versions it had not linked, completes a link it had committed) and names each such
    log; a log still running is left alone. Aliases are never moved.

    Exit code 0 when every alias is consistent and nothing is left to repair, 1 otherwise.
    """
    from lm_failtrace.report.tables import text_table
    from lm_failtrace.tracking import status as run_status

    # MLflow prints "View run ..." links on stdout when it closes a run; keep stdout for ours.
    with contextlib.redirect_stdout(sys.stderr):
        report = run_status(model_name, tracking_uri=tracking_uri)
    if as_json:
        echo_json({"model_name": model_name, **report.to_dict()})
    else:
        headers = ["alias", "model version", "router (linked)", "router (alias)", "consistent"]
        rows = [
            [
                r.alias,
                r.model_version,
                r.linked_router_version,
                r.router_alias_version,
                "yes" if r.consistent else "NO",
                r.reason,
            ]
            for r in report.aliases
        ]
        click.echo(text_table([*headers, "why"], rows))
        for title, lines in (
            ("repaired", report.repaired),
            ("still wrong", report.problems),
            ("in progress", report.in_progress),
        ):
            for line in lines:
                click.echo(f"{title}: {line}")
    if not report.ok:
        raise SystemExit(1)
