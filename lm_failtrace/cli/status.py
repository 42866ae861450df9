"""``failtrace status``: per alias, the model version, its router version and their consistency."""

from __future__ import annotations

import click

from lm_failtrace.cli._common import echo_json, reports_input_errors


@click.command()
@click.option("--model-name", required=True, help="Registered model name.")
@click.option("--tracking-uri", help="MLflow tracking URI [MLFLOW_TRACKING_URI, ./mlflow.db].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@reports_input_errors
def status(model_name: str, tracking_uri: str | None, as_json: bool) -> None:
    """List the aliases of a model and its router; say which are inconsistent. Repairs nothing.

    Exit code 0 when every alias is consistent, 1 otherwise.
    """
    from lm_failtrace.report.tables import text_table
    from lm_failtrace.tracking import status as run_status

    rows = run_status(model_name, tracking_uri=tracking_uri)
    if as_json:
        echo_json({"model_name": model_name, "aliases": [r.to_dict() for r in rows]})
    else:
        click.echo(
            text_table(
                [
                    "alias",
                    "model version",
                    "router (linked)",
                    "router (alias)",
                    "consistent",
                    "why",
                ],
                [
                    [
                        r.alias,
                        r.model_version,
                        r.linked_router_version,
                        r.router_alias_version,
                        "yes" if r.consistent else "NO",
                        r.reason,
                    ]
                    for r in rows
                ],
            )
        )
    if not all(r.consistent for r in rows):
        raise SystemExit(1)
