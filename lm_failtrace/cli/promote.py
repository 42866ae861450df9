"""``failtrace promote``: alias a model version and its linked router together."""

from __future__ import annotations

import click

from lm_failtrace.cli._common import echo_json, reports_input_errors


@click.command()
@click.option("--model-name", required=True, help="Registered model name.")
@click.option(
    "--version", "version", required=True, type=click.IntRange(min=1), help="Model version."
)
@click.option("--alias", required=True, help="Alias to set on both, e.g. champion.")
@click.option("--tracking-uri", help="MLflow tracking URI [MLFLOW_TRACKING_URI, ./mlflow.db].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@reports_input_errors
def promote(
    model_name: str, version: int, alias: str, tracking_uri: str | None, as_json: bool
) -> None:
    """Set ALIAS on a model version and on the router version its tags link to.

    Refuses when the link tags are missing or disagree. The router alias moves first and the
    model alias last; if the second step fails the router alias is restored, and `failtrace
    status` reports any alias left inconsistent.
    """
    from lm_failtrace.tracking import promote as run_promote

    result = run_promote(model_name, str(version), alias, tracking_uri=tracking_uri)
    if as_json:
        echo_json(result)
        return
    click.echo(
        f"{alias}: {model_name} version {result['model_version']} and "
        f"{result['router_name']} version {result['router_version']}"
    )
