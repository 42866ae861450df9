"""The published evaluation protocol (method.md section 5).

Within one cell: take the steerable units, z-score the features *within them*, route with the
paper's rule, and compare the mean rescue of the routed operator with always applying each
operator. Note what it does not do: the comparison picks the best fixed operator in hindsight on
the very units it is scored on (see :mod:`lm_failtrace.analysis._honest` for what does).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import UnitArrays, take
from lm_failtrace.analysis._rule import route_batch


def _route_cell(units: UnitArrays, config: AnalysisConfig) -> tuple[np.ndarray, ...]:
    steer = units.regime == "steerable"
    if not steer.any():
        empty = np.empty(0, dtype=object)
        return empty, np.empty(0, bool), np.empty(0), units.R[:0]
    rates = units.R[steer]
    ops, fell_back = route_batch(
        units.X[steer], tuple(config.features), config.routing_map, config.fallback
    )
    return ops, fell_back, take(rates, list(config.operators), ops), rates


def _summary(
    ops: np.ndarray, fell_back: np.ndarray, routed: np.ndarray, rates: np.ndarray, config
) -> dict:
    n = len(ops)
    counts = pd.Series(ops, dtype=object).value_counts()
    always = {
        op: (float(np.nanmean(rates[:, j])) if n and not np.isnan(rates[:, j]).all() else None)
        for j, op in enumerate(config.operators)
    }
    routed_mean = float(np.nanmean(routed)) if n else None
    fixed = {op: v for op, v in always.items() if v is not None}
    best_op = max(fixed, key=fixed.get) if fixed else None
    return {
        "n_steerable": n,
        "routes": {op: int(counts.get(op, 0)) for op in config.operators},
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


def published_protocol(units: UnitArrays, config: AnalysisConfig) -> dict:
    """The published protocol on one cell's units."""
    return _summary(*_route_cell(units, config), config)


def published_protocol_pooled(units: UnitArrays, config: AnalysisConfig) -> dict:
    """Pooled form: z-scores and routes *within each cell* (as published), then pools rescues."""
    parts = [_route_cell(units.subset(units.cell == c), config) for c in pd.unique(units.cell)]
    ops, fell_back, routed, rates = (np.concatenate([p[i] for p in parts]) for i in range(4))
    out = _summary(ops, fell_back, routed, rates, config)
    out["note"] = "z-scored and routed within each cell, routed rescues pooled over cells"
    return out
