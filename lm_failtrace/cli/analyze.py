"""``failtrace analyze``: a profile table in, the paper's and our honest analyses out."""

from __future__ import annotations

from pathlib import Path

import click

from lm_failtrace.cli._common import echo_json, reports_input_errors


@click.command()
@click.argument("profiles", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cell", help="Analyse only this cell (model|task).")
@click.option(
    "--features",
    multiple=True,
    help="Routing feature columns, comma-separated or repeated; presets: logit (default), outcome.",
)
@click.option(
    "--operators",
    multiple=True,
    help="Operator rescue-rate columns (must include retry); default: the paper's five.",
)
@click.option(
    "--map",
    "routes",
    multiple=True,
    metavar="FEATURE=OPERATOR",
    help="Route a feature to an operator in the paper rule (adds to / overrides the defaults).",
)
@click.option("--fallback", default=None, help="Operator when no z-score is positive.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(min=2))
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of folds and clustering."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@click.option(
    "--plot",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write PNG figures (routing map per cell, regime mix) into this folder.",
)
@reports_input_errors
def analyze(
    profiles: Path,
    cell: str | None,
    features: tuple[str, ...],
    operators: tuple[str, ...],
    routes: tuple[str, ...],
    fallback: str | None,
    folds: int,
    repeats: int,
    seed: int,
    as_json: bool,
    plot: Path | None,
) -> None:
    """Regimes, routing and honest evaluation of a failure-profile table.

    PROFILES is a CSV or Parquet table with one row per failure unit (see the README). Prints,
    per cell and pooled: regime counts; the paper's published protocol (Steerable-Hard units, best
    fixed operator in hindsight); the honest protocol (repeated K-fold cross-fitting of the paper
    rule, the best fixed operator, retry and a fitted ridge router, with the oracle as ceiling);
    the selected policy; how well features recover the regime; and a clustering of the units.

    Example: failtrace analyze profiles.csv --cell 'sft0p6b|gsm8k' --plot figures/
    """
    from dataclasses import replace

    from lm_failtrace.analysis import DEFAULT_MAPPING, AnalysisConfig, routing_map
    from lm_failtrace.analysis import analyze as run_analysis
    from lm_failtrace.profiles import ProfileSchema, read_profiles

    schema = ProfileSchema.from_options(features or None, operators or None)
    mapping = dict(DEFAULT_MAPPING)
    for item in routes:
        feature, sep, operator = item.partition("=")
        if not sep or not feature.strip() or not operator.strip():
            raise click.BadParameter(f"{item!r} is not FEATURE=OPERATOR", param_hint="--map")
        mapping[feature.strip()] = operator.strip()
    config = AnalysisConfig(
        features=schema.features,
        operators=schema.operators,
        mapping=mapping,
        n_folds=folds,
        n_repeats=repeats,
        random_state=seed,
    )
    if fallback is not None:
        config = replace(config, fallback=fallback)
    config.check()

    def progress(message: str) -> None:
        click.echo(f"[analyze] {message}", err=True)

    progress(f"reading {profiles}")
    table = read_profiles(profiles, config.schema)
    if cell is not None:
        table = table.cell(cell)
    document = run_analysis(table, config, progress=progress)
    if plot is not None:
        from lm_failtrace.report.plots import write_figures

        for path in write_figures(routing_map(table, config), plot):
            progress(f"wrote {path}")
    if as_json:
        echo_json(document)
    else:
        from lm_failtrace.report.tables import analysis_text

        click.echo(analysis_text(document))
