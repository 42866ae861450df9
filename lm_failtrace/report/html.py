"""The self-contained ``report.html``: one model's failure landscape, readable in MLflow's viewer.

MLflow shows HTML artifacts in a sandboxed iframe where relative links do not resolve, so figures
are inlined as base64 PNG. The page is rendered from the package template
``templates/report.html.j2`` by a Jinja2 environment with autoescape on: everything taken from
data (cell names, problem ids, model names, numbers, figure captions) reaches the template as
plain text and is escaped there, and nothing is marked safe. A Content-Security-Policy that
allows no scripts is a second line of defence, not the first.

The sections read the analysis document generically (leaves by path, intervals wherever a
mapping has ``mean``/``ci_low``/``ci_high``), so a new policy or statistic appears without an edit
here.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any, NamedTuple

import jinja2
import numpy as np
import pandas as pd

from lm_failtrace.profiles.build import PROFILE_COLUMNS

#: Per-unit columns shown for sampled failed problems (those present in the table).
OUTCOME_COLUMNS: tuple[str, ...] = tuple(c for c in PROFILE_COLUMNS if c != "max_generated_tokens")

_TEMPLATE = "report.html.j2"


class _Cell(NamedTuple):
    """One table cell as the template sees it: its text, and whether to right-align it."""

    text: str
    numeric: bool


class _Table(NamedTuple):
    headers: list[str]
    rows: list[list[_Cell]]


class _Figure(NamedTuple):
    caption: str
    src: str  # data URI


@cache
def _environment() -> jinja2.Environment:
    """The template environment: autoescape for every template, undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lm_failtrace.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def _cell(value: Any) -> _Cell:
    numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    return _Cell(_fmt(value), numeric)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> _Table:
    return _Table([str(h) for h in headers], [[_cell(v) for v in row] for row in rows])


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif not isinstance(value, (list, tuple)):
        yield ".".join(path), value


def _intervals(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every mapping with a ``mean`` and an interval, by path."""
    if isinstance(value, Mapping):
        if "mean" in value and "ci_low" in value:
            yield " / ".join(path), value
            return
        for key, item in value.items():
            yield from _intervals(item, (*path, str(key)))


def _regime_mix(cells: Mapping[str, Any]) -> _Table:
    flat = {cell: dict(_leaves(body.get("regimes", {}))) for cell, body in cells.items()}
    columns = list(dict.fromkeys(k for leaves in flat.values() for k in leaves))
    rows = [[cell, *(leaves.get(c) for c in columns)] for cell, leaves in flat.items()]
    return _table(["cell", *columns], rows)


def _policy_comparison(cells: Mapping[str, Any]) -> _Table:
    rows = [
        [cell, where, row.get("mean"), row.get("ci_low"), row.get("ci_high"), row.get("n_units")]
        for cell, body in cells.items()
        for where, row in _intervals(body.get("honest", {}))
    ]
    return _table(
        ["cell", "population / policy", "mean rescue", "CI low", "CI high", "units"], rows
    )


def _worst_cells(cells: Mapping[str, Any], limit: int = 10) -> _Table:
    """Cells ranked by the held-out rescue of their selected policy, lowest first."""
    rows = []
    for cell, body in cells.items():
        selection = body.get("selection") or {}
        rows.append([cell, body.get("n_units"), selection.get("selected"), selection.get("mean")])
    rows.sort(key=lambda r: (r[3] is None, r[3] if r[3] is not None else 0.0))
    return _table(["cell", "units", "selected policy", "held-out rescue"], rows[:limit])


def _failed_sample(frame: pd.DataFrame, columns: Sequence[str], size: int, seed: int) -> _Table:
    shown = ["cell", "problem_id", *(c for c in columns if c in frame.columns)]
    sample = frame.sample(n=min(size, len(frame)), random_state=seed) if len(frame) else frame
    sample = sample.sort_values(["cell", "problem_id"])
    return _table(shown, sample.loc[:, shown].itertuples(index=False, name=None))


def _figures(figures: Mapping[str, bytes]) -> list[_Figure]:
    return [
        _Figure(str(caption), "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
        for caption, png in figures.items()
    ]


def render_report(
    analysis: Mapping[str, Any],
    profiles: pd.DataFrame,
    figures: Mapping[str, bytes],
    *,
    title: str,
    context: Mapping[str, Any] | None = None,
    extra_columns: Sequence[str] = (),
    sample_size: int = 25,
    random_state: int = 0,
) -> str:
    """The report as one HTML string.

    Args:
        analysis: the document returned by :func:`lm_failtrace.analysis.analyze`.
        profiles: the profile table it was computed from (for the sample of failed problems).
        figures: caption -> PNG bytes, inlined as data URIs.
        title: page title and heading (escaped).
        context: key -> value shown at the top (model, version, run, source; escaped).
        extra_columns: further per-unit columns to show in the sample (features, rescue rates).
        sample_size: failed problems shown, drawn with ``random_state``.
    """
    cells = analysis.get("cells") or {}
    columns = [*OUTCOME_COLUMNS, *extra_columns]
    template = _environment().get_template(_TEMPLATE)
    return template.render(
        title=str(title),
        context=_table(["", ""], (context or {}).items()),
        regime_mix=_regime_mix(cells),
        figures=_figures(figures),
        policy_comparison=_policy_comparison(cells),
        worst_cells=_worst_cells(cells),
        failed_sample=_failed_sample(profiles, columns, sample_size, random_state),
    )
