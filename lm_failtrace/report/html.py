"""The self-contained ``report.html``: one model's failure landscape, readable in MLflow's viewer.

MLflow shows HTML artifacts in a sandboxed iframe where relative links do not resolve, so figures
are inlined as base64 PNG. Everything taken from data (cell names, problem ids, model names,
numbers) goes through :func:`html.escape`; a Content-Security-Policy that allows no scripts is a
second line of defence, not the first.

The sections read the analysis document generically (leaves by path, intervals wherever a
mapping has ``mean``/``ci_low``/``ci_high``), so a new policy or statistic appears without an edit
here.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lm_failtrace.profiles.build import PROFILE_COLUMNS

#: Per-unit columns shown for sampled failed problems (those present in the table).
OUTCOME_COLUMNS: tuple[str, ...] = tuple(c for c in PROFILE_COLUMNS if c != "max_generated_tokens")

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:72em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:0 1em 1em 0}img{max-width:100%;border:1px solid #ddd}
.note{color:#555;font-size:.9em}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def _cell(value: Any) -> str:
    numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    return (
        f'<td class="num">{_esc(_fmt(value))}</td>' if numeric else f"<td>{_esc(_fmt(value))}</td>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return '<p class="note">(nothing to show)</p>'
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


def _regime_mix(cells: Mapping[str, Any]) -> str:
    flat = {cell: dict(_leaves(body.get("regimes", {}))) for cell, body in cells.items()}
    columns = list(dict.fromkeys(k for leaves in flat.values() for k in leaves))
    rows = [[cell, *(leaves.get(c) for c in columns)] for cell, leaves in flat.items()]
    return _table(["cell", *columns], rows)


def _policy_comparison(cells: Mapping[str, Any]) -> str:
    rows = [
        [cell, where, row.get("mean"), row.get("ci_low"), row.get("ci_high"), row.get("n_units")]
        for cell, body in cells.items()
        for where, row in _intervals(body.get("honest", {}))
    ]
    return _table(
        ["cell", "population / policy", "mean rescue", "CI low", "CI high", "units"], rows
    )


def _worst_cells(cells: Mapping[str, Any], limit: int = 10) -> str:
    """Cells ranked by the held-out rescue of their selected policy, lowest first."""
    rows = []
    for cell, body in cells.items():
        selection = body.get("selection") or {}
        rows.append([cell, body.get("n_units"), selection.get("selected"), selection.get("mean")])
    rows.sort(key=lambda r: (r[3] is None, r[3] if r[3] is not None else 0.0))
    return _table(["cell", "units", "selected policy", "held-out rescue"], rows[:limit])


def _failed_sample(frame: pd.DataFrame, columns: Sequence[str], size: int, seed: int) -> str:
    shown = ["cell", "problem_id", *(c for c in columns if c in frame.columns)]
    sample = frame.sample(n=min(size, len(frame)), random_state=seed) if len(frame) else frame
    sample = sample.sort_values(["cell", "problem_id"])
    return _table(shown, sample.loc[:, shown].itertuples(index=False, name=None))


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
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        _table(["", ""], list((context or {}).items())),
        "<h2>Regime mix</h2>",
        _regime_mix(cells),
        "<h2>Figures</h2>",
    ]
    for caption, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )
    parts += [
        "<h2>Policy comparison (cross-validated, held-out units)</h2>",
        '<p class="note">Mean rescue with its confidence interval; an interval that overlaps '
        "another policy's is not evidence of a difference.</p>",
        _policy_comparison(cells),
        "<h2>Worst cells</h2>",
        _worst_cells(cells),
        "<h2>Sample of failed problems</h2>",
        _failed_sample(profiles, [*OUTCOME_COLUMNS, *extra_columns], sample_size, random_state),
        "</body></html>",
    ]
    return "\n".join(parts)
