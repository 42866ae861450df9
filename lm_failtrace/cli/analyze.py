"""``failtrace analyze``: a profile table in, the paper's and our honest analyses out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lm_failtrace.cli._common import analysis_options, echo_json, reports_input_errors
from lm_failtrace.datasets import EXAMPLES

if TYPE_CHECKING:
    from lm_failtrace.analysis import AnalysisConfig


@click.command()
@click.argument("profiles", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--example",
    type=click.Choice(sorted(EXAMPLES)),
    help="Analyse a bundled table instead of PROFILES (paper: the paper's published data).",
)
@click.option("--cell", help="Analyse only this cell (model|task).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@click.option(
    "--plot",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write report.html's PNG figures into this folder (per cell: cost frontier, features "
    "by regime, the selected policy's routing map; with several cells: regime mix). Existing "
    "figures are replaced only by a successful run.",
)
@reports_input_errors
@analysis_options
def analyze(
    profiles: Path | None,
    example: str | None,
    cell: str | None,
    as_json: bool,
    plot: Path | None,
    config: AnalysisConfig,
) -> None:
    """Regimes, routing and honest evaluation of a failure-profile table.

    PROFILES is a CSV or Parquet table with one row per failure unit (see the README); instead of
    it, --example paper analyses the bundled data of the paper (4 of its 8 cells). Prints, per
    cell and pooled: regime counts; the paper's published protocol (Steerable-Hard units, best
    fixed operator in hindsight); the honest protocol (repeated K-fold cross-fitting of the paper
    rule, the best fixed operator, retry and a fitted ridge router, with the oracle as ceiling);
    the selected policy; how well features recover the regime; and a clustering of the units.

    \b
    Examples:
      failtrace analyze profiles.csv --cell 'sft0p6b|gsm8k' --plot figures/
      failtrace analyze --example paper    # the paper's reference numbers, one command
    """
    if profiles is not None and example is not None:
        raise click.UsageError("give PROFILES or --example, not both")
    if profiles is None and example is None:
        raise click.UsageError("missing PROFILES (or --example paper for the bundled data)")
    if example is not None:
        profiles = EXAMPLES[example]()

    from lm_failtrace.analysis import analyze as run_analysis
    from lm_failtrace.outputs import check_outputs
    from lm_failtrace.profiles import read_profiles

    def progress(message: str) -> None:
        click.echo(f"[analyze] {message}", err=True)

    if plot is not None:
        check_outputs([], [profiles], folders=[("plot", plot)])
    progress(f"reading {profiles}")
    table = read_profiles(profiles, config.schema)
    if cell is not None:
        table = table.cell(cell)
    document = run_analysis(table, config, progress=progress)
    if plot is not None:
        from lm_failtrace.report.plots import report_figures, save_figures

        figures = report_figures(table, config, document)
        check_outputs([("plot", plot / figure.name) for figure in figures], [profiles])
        for path in save_figures(figures, plot):
            progress(f"wrote {path}")
    if as_json:
        echo_json(document)
    else:
        from lm_failtrace.report.tables import analysis_text

        click.echo(analysis_text(document))
