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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lm_failtrace.analysis import (
    REGIMES,
    SKIP,
    AnalysisConfig,
    fit_policy,
    make_policy,
    routing_map,
    token_matrix,
)
from lm_failtrace.outputs import write_atomic
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


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _colours(names: Sequence[str]) -> dict[str, Any]:
    """One stable colour per operator (its position among the configured operators); ``skip``
    (no repair, a route of routers that weigh tokens) is light grey."""
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    return {**{name: palette(i % 10) for i, name in enumerate(names)}, SKIP: "#bbbbbb"}


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


#: Marker of each held-out policy on the frontier figure (the selected one is a gold star).
_POLICY_MARKERS = ("D", "s", "^", "v", "P", "X", "h", "<", ">")


def _draw_policies(
    ax: Any, policies: Sequence[Mapping[str, Any]]
) -> tuple[list[float], list[float]]:
    """Each policy's held-out point with intervals on both axes; returns the x and y extents."""
    xs, ys = [], []
    for i, policy in enumerate(policies):
        x, y = policy["tokens"], policy["mean"] * 100
        x_low, x_high = policy.get("tokens_low"), policy.get("tokens_high")
        low = policy["ci_low"] * 100 if policy.get("ci_low") is not None else y
        high = policy["ci_high"] * 100 if policy.get("ci_high") is not None else y
        xerr = [[x - x_low], [x_high - x]] if x_low is not None and x_high is not None else None
        ax.errorbar([x], [y], yerr=[[y - low], [high - y]], xerr=xerr, fmt="none",
                    ecolor="black", lw=0.8, capsize=2, zorder=3)  # fmt: skip
        if policy.get("selected"):
            ax.scatter([x], [y], s=170, marker="*", color="gold", edgecolor="black", zorder=5,
                       label=f"selected: {policy['name']} (held out)")  # fmt: skip
        else:
            ax.scatter([x], [y], s=40, marker=_POLICY_MARKERS[i % len(_POLICY_MARKERS)],
                       color="white", edgecolor="black", zorder=4,
                       label=f"{policy['name']} (held out)")  # fmt: skip
        xs += [x, x_high if x_high is not None else x]
        ys += [low, high]
    return xs, ys


def _draw_frontier(
    ax: Any, rows: Sequence[OperatorSummary], colours: Mapping,
    policies: Sequence[Mapping[str, Any]], budget: float | None,
) -> None:  # fmt: skip
    x = [r.tokens_per_trial for r in rows]
    y = [r.rescue["mean"] * 100 for r in rows]
    front = _frontier_points(rows)
    ax.plot(
        [r.tokens_per_trial for r in front],
        [r.rescue["mean"] * 100 for r in front],
        color="#999999", lw=1, ls="--", zorder=1, label="operators' cost frontier",
    )  # fmt: skip
    errors = _errors(rows)
    ax.errorbar(x, y, yerr=errors, fmt="none", ecolor="#555555", lw=1, capsize=3)
    for row, xi, yi in zip(rows, x, y, strict=True):
        ax.scatter([xi], [yi], s=50, color=colours[row.operator], zorder=3, edgecolor="black",
                   label=row.operator)  # fmt: skip
    px, py = _draw_policies(ax, policies)
    if budget is not None:
        ax.axvline(budget, color="#CC79A7", lw=1.2, ls=":", label="token budget")
        px.append(budget)
    x, y = [*x, *px], [*np.subtract(y, errors[0]), *np.add(y, errors[1]), *py]
    ax.set_xlabel("generated tokens per trial (mean over units)")
    ax.set_xlim(left=0, right=max(x) * 1.1 if max(x) > 0 else 1)
    low, high = min(y), max(y)
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
        title = "Rescue rate against cost: operators, and policies held out"
        caption = (
            f"Rescue rate against the tokens one trial generates, {where}: each operator over "
            "every unit it was assayed on, and each policy on held-out units (intervals on both "
            "axes), with the token budget"
        )
    else:
        title = "Rescue rate per operator (no token counts)"
        caption = f"Rescue rate of each operator, {where} (no token counts: costs unknown)"
    budget = (section.get("budget") or {}).get("budget_tokens")
    png = frontier_figure(rows, operators, title, policy_points(section), budget)
    return None if png is None else Figure(name, caption, png, "frontier", cell)


def frontier_figure(
    rows: Sequence[OperatorSummary],
    operators: Sequence[str],
    title: str,
    policies: Sequence[Mapping[str, Any]] = (),
    budget: float | None = None,
) -> bytes | None:
    """Rescue rate against tokens per trial, one point per operator (None: nothing to draw).

    ``policies`` (:func:`policy_points`): each policy's held-out point (``name``, ``mean``,
    ``ci_low``, ``ci_high``, ``tokens``, ``tokens_low``, ``tokens_high``, ``selected``), drawn
    with ``budget`` (tokens per failure unit, a vertical line) when token counts are known.
    """
    rows = [r for r in rows if r.rescue.get("mean") is not None]
    if not rows:
        return None
    colours = _colours(operators)
    costed = has_costs(rows)
    size = (7.6, 4.4) if costed else (5.2, 0.45 * len(rows) + 1.4)
    with _pyplot() as plt:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        if costed:
            _draw_frontier(ax, rows, colours, policies, budget)
            ax.set_ylabel("rescue rate, % of trials (95% CI)")
        else:
            _draw_rescue_only(ax, rows, colours)
        ax.grid(alpha=0.3)
        ax.set_title(title, loc="left")
        png = _png(fig)
        plt.close(fig)
    return png


def policy_points(section: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each policy's held-out rescue and tokens per failure unit, with intervals (all failure
    units; the oracle included as the ceiling); empty without token counts."""
    selected = (section.get("selection") or {}).get("selected")
    rows = (section.get("honest") or {}).get("all_failures") or {}
    out = []
    for name, row in rows.items():
        tokens = row.get("tokens") if isinstance(row, Mapping) else None
        if not tokens or tokens.get("mean") is None or row.get("mean") is None:
            continue
        out.append({
            "name": name, "mean": row["mean"], "ci_low": row.get("ci_low"),
            "ci_high": row.get("ci_high"), "tokens": tokens["mean"],
            "tokens_low": tokens.get("ci_low"), "tokens_high": tokens.get("ci_high"),
            "selected": name == selected,
        })  # fmt: skip
    return out


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
    X = frame.loc[:, list(config.features)]
    tokens = token_matrix(frame, config.operators)
    fit_policy(policy, X, frame.loc[:, list(config.operators)], tokens)
    return used, np.asarray(policy.predict(X), dtype=object)


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
    Each is written atomically: a crash never leaves a truncated PNG behind.
    """
    out = Path(out_dir)
    return [write_atomic(out / figure.name, figure.png, parameter="plot") for figure in figures]


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
