"""The published evaluation protocol (docs/method.md section 5).

Within one cell: take the steerable units, z-score the features *within them*, route with the
paper's rule, and compare the mean rescue of the routed operator with always applying each
operator. Note what it does not do: the comparison picks the best fixed operator in hindsight on
the very units it is scored on (see :mod:`lm_failtrace.analysis._honest` for what does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lm_failtrace.analysis._config import AnalysisConfig


def _route(X: np.ndarray, R: np.ndarray, config: AnalysisConfig) -> tuple[np.ndarray, ...]:
    """Route one cell's steerable units (z within them).

    Returns:
        (operator column per unit, True where it fell back, routed rescue, the units' rates).
    """
    if len(X) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, bool), np.empty(0), R
    rule = config.paper_rule().fit(X)
    choice = rule.route_index(X)
    column = pd.Index(list(config.operators)).get_indexer(rule.targets_)[choice]
    return column, choice == rule.n_features_in_, R[np.arange(len(R)), column], R


def _summary(
    column: np.ndarray, fell_back: np.ndarray, routed: np.ndarray, rates: np.ndarray, config
) -> dict:
    n = len(column)
    counts = np.bincount(column, minlength=len(config.operators))
    always = {
        op: (float(np.nanmean(rates[:, j])) if n and not np.isnan(rates[:, j]).all() else None)
        for j, op in enumerate(config.operators)
    }
    routed_mean = float(np.nanmean(routed)) if n else None
    fixed = {op: v for op, v in always.items() if v is not None}
    best_op = max(fixed, key=fixed.get) if fixed else None
    return {
        "n_steerable": n,
        "routes": {op: int(counts[j]) for j, op in enumerate(config.operators)},
        "fallback": config.fallback,
        "n_fallback": int(fell_back.sum()),
        "rescue": {"routed": routed_mean, "always": always},
        "best_fixed_in_hindsight": best_op,
        "margin_over_best_fixed": (
            routed_mean - fixed[best_op] if routed_mean is not None and best_op else None
        ),
        "margin_over_retry": (
            routed_mean - always["retry"]
            if routed_mean is not None and always["retry"] is not None
            else None
        ),
    }


def published_by_cell(
    X: np.ndarray,
    R: np.ndarray,
    steerable: np.ndarray,
    codes: np.ndarray,
    names: Sequence[str],
    config: AnalysisConfig,
) -> tuple[dict[str, dict], dict]:
    """The published protocol of every cell, and pooled over cells.

    Args:
        X, R: features and rescue rates of all units.
        steerable: True for the units of the Steerable-Hard regime.
        codes: cell index of each unit (``names[codes[i]]`` is its cell).

    Returns:
        (cell -> summary, pooled summary). The pooled form keeps the published protocol's
        within-cell z-scores and routes, and pools the routed rescues over cells.

    Only steerable units are routed, each cell's rows found by one sort of the steerable subset,
    so a million-unit table costs little more than reading it.
    """
    steer = np.flatnonzero(steerable)
    order = steer[np.argsort(codes[steer], kind="stable")]
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    parts = [_route(X[rows], R[rows], config) for rows in np.split(order, bounds[1:-1])]
    cells = {str(name): _summary(*part, config) for name, part in zip(names, parts, strict=True)}
    pooled = _summary(*(np.concatenate([p[i] for p in parts]) for i in range(4)), config)
    pooled["note"] = "z-scored and routed within each cell, routed rescues pooled over cells"
    return cells, pooled
