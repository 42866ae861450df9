"""PNG figures of an analysis, sized for a 1400 px page: the cost frontier of the operators, each
feature against regime, the routing map of the selected policy, and the regime mix per cell.

matplotlib is imported inside the functions with the non-interactive Agg backend, so importing
this module is cheap and works on machines without a display. Every text drawn (cell, model, task
and operator names come from data) is plain text: mathtext is off (``text.parse_math``), so a
name holding ``$`` is printed as written, never parsed.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lm_failtrace.analysis import REGIMES, AnalysisConfig, make_policy, routing_map
from lm_failtrace.profiles import ProfileTable
from lm_failtrace.report.summary import OperatorSummary, operator_summaries

#: Resolution of every figure; with :data:`PAGE_INCHES` a full-width figure is ~1330 px wide.
DPI = 110
#: Width of a full-width figure, fitted to a 1400 px page with its margins.
PAGE_INCHES = 12.0
#: Regime colours (colour-blind safe: Okabe-Ito blue, orange, grey).
REGIME_COLOURS = {"steerable": "#0072B2", "resample": "#E69F00", "beyond_reach": "#7f7f7f"}
#: Plain text everywhere: data may hold ``$`` and must not be read as mathtext.
_STYLE = {
    "text.usetex": False,
    "text.parse_math": False,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
}


@dataclass(frozen=True)
class Figure:
    """One figure of the report.

    Attributes:
        name: file name (unique within one report; MLflow artifact ``figures/<name>``).
        caption: what it shows, in a sentence.
        png: the image.
        kind: ``frontier``, ``features``, ``routing_map`` or ``regime_mix``.
        section: the cell it belongs to, or None for the pooled section.
    """

    name: str
    caption: str
    png: bytes
    kind: str
    section: str | None = None


@contextmanager
def _pyplot() -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(_STYLE):
        yield plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _save(png: bytes, path: Path) -> Path:
    """Write atomically: a crash never leaves a truncated PNG behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(png)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; figures are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _colours(names: Sequence[str]) -> dict[str, Any]:
    """One stable colour per operator (its position among the configured operators)."""
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    return {name: palette(i % 10) for i, name in enumerate(names)}


# --- cost frontier -----------------------------------------------------------------------------


def _frontier_points(rows: Sequence[OperatorSummary]) -> list[OperatorSummary]:
    """Operators no other beats on both rescue and tokens (the cost frontier), cheapest first."""
    ranked = sorted(rows, key=lambda r: (r.tokens_per_trial, -(r.rescue["mean"] or 0.0)))
    frontier, best = [], -np.inf
    for row in ranked:
        if row.rescue["mean"] is not None and row.rescue["mean"] > best:
            frontier.append(row)
            best = row.rescue["mean"]
    return frontier


def _errors(rows: Sequence[OperatorSummary]) -> np.ndarray:
    """Asymmetric error bars in percent (0 where there is no interval)."""
    out = []
    for row in rows:
        r = row.rescue
        if r.get("ci_low") is None or r.get("ci_high") is None:
            out.append((0.0, 0.0))
        else:
            out.append((r["mean"] - r["ci_low"], r["ci_high"] - r["mean"]))
    return np.asarray(out, dtype=float).T * 100


def _draw_policy(ax: Any, policy: Mapping[str, Any]) -> tuple[float, float, float]:
    """The selected policy's held-out point (a star); returns its x, lowest and highest y."""
    y = policy["mean"] * 100
    low = policy["ci_low"] * 100 if policy.get("ci_low") is not None else y
    high = policy["ci_high"] * 100 if policy.get("ci_high") is not None else y
    ax.errorbar([policy["tokens"]], [y], yerr=[[y - low], [high - y]], fmt="none",
                ecolor="black", lw=1, capsize=3)  # fmt: skip
    ax.scatter([policy["tokens"]], [y], s=160, marker="*", color="gold", edgecolor="black",
               zorder=4, label=f"selected: {policy['name']} (held out)")  # fmt: skip
    return policy["tokens"], low, high


def _draw_frontier(
    ax: Any, rows: Sequence[OperatorSummary], colours: Mapping, policy: Mapping | None
) -> None:
    x = [r.tokens_per_trial for r in rows]
    y = [r.rescue["mean"] * 100 for r in rows]
    front = _frontier_points(rows)
    ax.plot(
        [r.tokens_per_trial for r in front],
        [r.rescue["mean"] * 100 for r in front],
        color="#999999", lw=1, ls="--", zorder=1, label="cost frontier",
    )  # fmt: skip
    errors = _errors(rows)
    ax.errorbar(x, y, yerr=errors, fmt="none", ecolor="#555555", lw=1, capsize=3)
    for row, xi, yi in zip(rows, x, y, strict=True):
        ax.scatter([xi], [yi], s=50, color=colours[row.operator], zorder=3, edgecolor="black",
                   label=row.operator)  # fmt: skip
    low, high = min(np.subtract(y, errors[0])), max(np.add(y, errors[1]))
    if policy is not None:
        px, plow, phigh = _draw_policy(ax, policy)
        x, low, high = [*x, px], min(low, plow), max(high, phigh)
    ax.set_xlabel("generated tokens per trial (mean over units)")
    ax.set_xlim(left=0, right=max(x) * 1.1 if max(x) > 0 else 1)
    pad = max(2.0, (high - low) * 0.15)
    ax.set_ylim(max(0.0, low - pad), min(100.0, high + pad))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)


def _draw_rescue_only(ax: Any, rows: Sequence[OperatorSummary], colours: Mapping) -> None:
    """Without token counts: each operator's rescue with its interval, best on top."""
    rows = sorted(rows, key=lambda r: r.rescue["mean"])
    y = np.arange(len(rows))
    x = [r.rescue["mean"] * 100 for r in rows]
    ax.errorbar(x, y, xerr=_errors(rows), fmt="none", ecolor="#555555", lw=1, capsize=3)
    ax.scatter(x, y, s=46, color=[colours[r.operator] for r in rows], zorder=3, edgecolor="black")
    ax.set_yticks(y, [r.operator for r in rows])
    ax.set_xlabel("rescue rate, % of trials (95% CI)")
    ax.set_xlim(0, 100)


def has_costs(rows: Sequence[OperatorSummary]) -> bool:
    """Whether every operator's tokens per trial is known (the cost frontier can be drawn)."""
    return bool(rows) and all(r.tokens_per_trial is not None for r in rows)


def _frontier(
    rows: Sequence[OperatorSummary], operators: Sequence[str], section: Mapping[str, Any],
    where: str, name: str, cell: str | None,
) -> Figure | None:  # fmt: skip
    """The frontier figure of one section, titled for what it can show."""
    if has_costs(rows):
        title = "Rescue rate against cost, per operator"
        caption = f"Rescue rate of each operator against the tokens one trial generates, {where}"
    else:
        title = "Rescue rate per operator (no token counts)"
        caption = f"Rescue rate of each operator, {where} (no token counts: costs unknown)"
    png = frontier_figure(rows, operators, title, selected_point(section))
    return None if png is None else Figure(name, caption, png, "frontier", cell)


def frontier_figure(
    rows: Sequence[OperatorSummary],
    operators: Sequence[str],
    title: str,
    policy: Mapping[str, Any] | None = None,
) -> bytes | None:
    """Rescue rate against tokens per trial, one point per operator (None: nothing to draw).

    ``policy`` (``name``, ``mean``, ``ci_low``, ``ci_high``, ``tokens`` per trial): the selected
    policy's held-out point, drawn as a star when token counts are known.
    """
    rows = [r for r in rows if r.rescue.get("mean") is not None]
    if not rows:
        return None
    colours = _colours(operators)
    costed = has_costs(rows)
    size = (7.0, 4.0) if costed else (5.2, 0.45 * len(rows) + 1.4)
    with _pyplot() as plt:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        if costed:
            _draw_frontier(ax, rows, colours, policy)
            ax.set_ylabel("rescue rate, % of trials (95% CI)")
        else:
            _draw_rescue_only(ax, rows, colours)
        ax.grid(alpha=0.3)
        ax.set_title(title, loc="left")
        png = _png(fig)
        plt.close(fig)
    return png


def selected_point(section: Mapping[str, Any]) -> dict[str, Any] | None:
    """The selected policy's held-out rescue (with interval) and tokens per trial, or None."""
    name = (section.get("selection") or {}).get("selected")
    row = ((section.get("honest") or {}).get("all_failures") or {}).get(name) or {}
    per_1k, mean = row.get("rescue_per_1k_tokens"), row.get("mean")
    if not per_1k or mean is None:
        return None
    return {**row, "name": name, "tokens": mean / per_1k * 1000}


# --- features against regime -------------------------------------------------------------------


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) for ``n`` feature panels: one row up to 4 panels, else two rows."""
    if n <= 4:
        return 1, max(n, 1)
    cols = math.ceil(n / 2)
    return 2, cols


def _feature_panel(ax: Any, values: pd.Series, regimes: np.ndarray, feature: str) -> None:
    present = [r for r in REGIMES if (regimes == r).any()]
    groups = [values[regimes == r].dropna().to_numpy(dtype=float) for r in present]
    positions = np.arange(1, len(present) + 1)
    ax.boxplot(
        groups, positions=positions, widths=0.55, showfliers=False,
        medianprops={"color": "black"}, boxprops={"color": "#444444"},
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for pos, regime, group in zip(positions, present, groups, strict=True):
        jitter = rng.uniform(-0.18, 0.18, len(group))
        ax.scatter(pos + jitter, group, s=7, alpha=0.45, color=REGIME_COLOURS.get(regime, "C0"))
    ax.set_xticks(positions, [f"{r}\n(n={len(g)})" for r, g in zip(present, groups, strict=True)])
    ax.set_title(feature)
    ax.grid(axis="y", alpha=0.3)


def features_figure(
    frame: pd.DataFrame, features: Sequence[str], regimes: np.ndarray | None, title: str
) -> bytes | None:
    """One panel per feature: its values among the units of each regime (box and points)."""
    features = [f for f in features if f in frame.columns]
    if not features or regimes is None:
        return None
    rows, cols = _grid(len(features))
    with _pyplot() as plt:
        fig, axes = plt.subplots(
            rows, cols, figsize=(PAGE_INCHES, 3.0 * rows + 0.5), squeeze=False,
            layout="constrained",
        )  # fmt: skip
        for ax, feature in zip(axes.flat, features, strict=False):
            values = pd.to_numeric(frame[feature], errors="coerce").reset_index(drop=True)
            _feature_panel(ax, values, np.asarray(regimes), feature)
        for ax in list(axes.flat)[len(features) :]:
            ax.set_visible(False)
        fig.suptitle(title, x=0.01, ha="left")
        png = _png(fig)
        plt.close(fig)
    return png


# --- routing map -------------------------------------------------------------------------------


def _pairs(columns: Sequence[str]) -> list[tuple[str, str | None]]:
    return list(itertools.combinations(columns, 2)) or [(columns[0], None)]


def routing_figure(
    units: pd.DataFrame, features: Sequence[str], colours: Mapping, title: str
) -> bytes:
    """One panel per pair of features (z-scores), every unit coloured by the operator it is sent
    to (``units``: columns ``z_<feature>`` and ``route``)."""
    pairs = _pairs([f"z_{f}" for f in features])
    cols = min(len(pairs), 5)
    rows = math.ceil(len(pairs) / cols)
    side = min(PAGE_INCHES / cols, 3.6)
    routes = [r for r in colours if (units["route"] == r).any()]
    with _pyplot() as plt:
        fig, axes = plt.subplots(
            rows, cols, figsize=(side * cols, side * rows * 0.92 + 0.8), squeeze=False,
            layout="constrained",
        )  # fmt: skip
        for ax, (fx, fy) in zip(axes.flat, pairs, strict=False):
            for route in routes:
                group = units.loc[units["route"] == route]
                y = group[fy] if fy else np.zeros(len(group))
                ax.scatter(group[fx], y, s=9, alpha=0.7, color=colours[route], label=route)
            ax.axhline(0, color="grey", lw=0.5)
            ax.axvline(0, color="grey", lw=0.5)
            ax.set_xlabel(fx)
            ax.set_ylabel(fy or "")
        for ax in list(axes.flat)[len(pairs) :]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 7),
                   title="sent to", markerscale=2)  # fmt: skip
        fig.suptitle(title, x=0.01, ha="left")
        png = _png(fig)
        plt.close(fig)
    return png


def _policy_routes(
    frame: pd.DataFrame, policy_name: str, config: AnalysisConfig
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """(features the policy reads, its route for every unit), the policy fitted on ``frame``.

    A policy that reads no feature (a fixed operator) gives ``((), None)``.
    """
    policy = make_policy(policy_name, config)
    used = tuple(getattr(policy, "features", None) or ())
    if not used:
        return (), None
    policy.fit(frame.loc[:, list(config.features)], frame.loc[:, list(config.operators)])
    return used, np.asarray(policy.predict(frame.loc[:, list(config.features)]), dtype=object)


# --- regime mix --------------------------------------------------------------------------------


def regime_mix_figure(units: pd.DataFrame) -> bytes:
    """Share of each regime per cell (one bar per cell)."""
    mix = pd.crosstab(units["cell"], units["regime"], normalize="index")
    mix = mix.reindex(columns=[r for r in REGIMES if r in mix.columns])
    with _pyplot() as plt:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(mix) + 1.4), layout="constrained")
        left = pd.Series(0.0, index=mix.index)
        labels = [str(c) for c in mix.index]
        for regime in mix.columns:
            ax.barh(labels, mix[regime] * 100, left=left * 100, color=REGIME_COLOURS[regime],
                    label=regime)  # fmt: skip
            left += mix[regime]
        ax.set_xlim(0, 100)
        ax.invert_yaxis()
        ax.set_xlabel("% of failure units")
        ax.set_title("Regime mix per cell", loc="left")
        fig.legend(loc="outside upper right", ncols=len(mix.columns))
        png = _png(fig)
        plt.close(fig)
    return png


def save_figures(figures: Sequence[Figure], out_dir: str | Path) -> list[Path]:
    """Write each figure as ``out_dir/<name>`` (folder created if needed); return the paths.

    The same figures as report.html (:func:`report_figures`), for ``failtrace analyze --plot``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [_save(figure.png, out / figure.name) for figure in figures]


# --- all figures of a report -------------------------------------------------------------------


class _Names:
    """Unique file names (two cells may share a slug: ``a|b`` and ``a_b``)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, kind: str, section: str | None) -> str:
        stem = f"{kind}_{_slug(section)}" if section is not None else kind
        name, n = f"{stem}.png", 1
        while name in self.seen:
            n += 1
            name = f"{stem}_{n}.png"
        self.seen.add(name)
        return name


def _cell_figures(
    cell: str, frame: pd.DataFrame, z: pd.DataFrame, section: Mapping[str, Any],
    config: AnalysisConfig, names: _Names,
) -> Iterator[Figure]:  # fmt: skip
    operators = list(config.operators)
    rows = operator_summaries(frame, operators, config.confidence, config.random_state)
    frontier = _frontier(rows, operators, section, cell, names("frontier", cell), cell)
    if frontier is not None:
        yield frontier
    regimes = z["regime"].to_numpy()
    png = features_figure(frame, config.features, regimes, "Each feature by regime")
    if png is not None:
        caption = f"Each feature among the failure units of each regime, {cell}"
        yield Figure(names("features", cell), caption, png, "features", cell)
    selected = (section.get("selection") or {}).get("selected")
    if selected is None:
        return
    used, routes = _policy_routes(frame, selected, config)
    if routes is None:
        return
    units = z.assign(route=routes)
    title = f"Where {selected} (fitted on all units of the cell) sends each unit"
    png = routing_figure(units, used, _colours(operators), title)
    caption = f"Where {selected} sends each failure unit of {cell}, by pair of features"
    yield Figure(names("routing_map", cell), caption, png, "routing_map", cell)


def report_figures(
    table: ProfileTable, config: AnalysisConfig, analysis: Mapping[str, Any]
) -> list[Figure]:
    """Every figure of report.html for ``analysis`` (computed from ``table`` with ``config``).

    Per cell: the cost frontier, the features by regime and, when the selected policy reads
    features, its routing map. With several cells: the pooled frontier and the regime mix.
    """
    config = config.resolved(table.schema)
    z = routing_map(table, config)
    frame = table.frame.reset_index(drop=True)
    names, out = _Names(), []
    cells = analysis.get("cells") or {}
    for cell, section in cells.items():
        mask = (frame["cell"] == cell).to_numpy()
        part_z = z.loc[(z["cell"] == cell).to_numpy()].reset_index(drop=True)
        out += _cell_figures(
            cell, frame.loc[mask].reset_index(drop=True), part_z, section, config, names
        )
    if len(cells) > 1:
        rows = operator_summaries(
            frame, list(config.operators), config.confidence, config.random_state
        )
        pooled = analysis.get("pooled") or {}
        frontier = _frontier(
            rows, config.operators, pooled, "all cells", names("frontier", None), None
        )
        out += [frontier] if frontier is not None else []
        out.append(
            Figure(names("regime_mix", None), "Regime mix per cell", regime_mix_figure(z),
                   "regime_mix")
        )  # fmt: skip
    return out


__all__ = [
    "Figure",
    "features_figure",
    "frontier_figure",
    "regime_mix_figure",
    "report_figures",
    "routing_figure",
    "save_figures",
]
