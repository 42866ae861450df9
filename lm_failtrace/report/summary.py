"""The numbers report.html states beside the analysis document: per-operator rescue and cost.

The analysis document holds the regimes, each operator's rescue and cost
(:func:`operator_summaries`, re-exported here for the report's figures and tables), the
cross-validated policies and the verdicts; what else the report states is computed here with the
analysis's own interval method, so the report states every interval the same way the analysis
does.

Everything here is plain numbers (no HTML, no figures): :mod:`.html` words them and
:mod:`.plots` draws them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lm_failtrace.analysis import (  # the analysis's one method each
    REGIMES,
    OperatorSummary,
    RegimeLabeler,
    proportion_ci,
)
from lm_failtrace.analysis import operator_summaries as operator_summaries  # for html, plots
from lm_failtrace.errors import InputError

#: Interval level when a document does not state its own.
DEFAULT_CONFIDENCE = 0.95


def best_operator(summaries: Sequence[OperatorSummary]) -> str | None:
    """The operator with the highest mean rescue (ties: listed first), as ``best_fixed`` picks."""
    best, best_mean = None, -np.inf
    for row in summaries:
        mean = row.rescue.get("mean")
        if mean is not None and mean > best_mean:
            best, best_mean = row.operator, mean
    return best


def regime_labels(frame: pd.DataFrame, config: Mapping[str, Any]) -> np.ndarray | None:
    """Each row's regime, from the document's configuration (None when the frame cannot tell)."""
    operators = list(config.get("operators") or ())
    if "retry" not in operators or any(op not in frame.columns for op in operators):
        return None
    labeler = RegimeLabeler(
        tuple(operators), config.get("delta", 0.05), config.get("reach", 0.50)
    ).fit()
    try:
        return labeler.predict(frame.loc[:, operators])
    except InputError:  # a unit without retry, or without any other operator, assayed
        return None


def selection_margin(selection: Mapping[str, Any], versus: str) -> Mapping[str, Any] | None:
    """The selected policy's paired held-out difference over ``versus``, if the document has it
    (``margin_over_<versus>``, or the runner-up's margin when the runner-up is ``versus``)."""
    for key in (f"margin_over_{versus}", "margin_over_runner_up"):
        margin = selection.get(key)
        if isinstance(margin, Mapping) and margin.get("versus") == versus:
            return margin
    return None


def share_interval(regimes: Mapping[str, Any], regime: str) -> Mapping[str, Any] | None:
    """The interval the analysis document holds for ``regime``'s share of units, if any."""
    value = (regimes.get("intervals") or {}).get(regime)
    return value if isinstance(value, Mapping) and "mean" in value else None


def regime_shares(
    regimes: Mapping[str, Any], confidence: float = DEFAULT_CONFIDENCE
) -> list[tuple[str, int | None, Mapping[str, Any]]]:
    """(regime, count, share with interval) of every regime a section lists.

    The document's interval is used when it holds one; otherwise the analysis's interval for a
    share of units is computed from the counts.
    """
    counts = regimes.get("counts") or {}
    total = sum(int(v) for v in counts.values() if isinstance(v, (int, np.integer)))
    names = [r for r in REGIMES if r in counts] + [r for r in counts if r not in REGIMES]
    out = []
    for name in names:
        count = counts.get(name)
        share = share_interval(regimes, name)
        if share is None and isinstance(count, (int, np.integer)) and total:
            share = proportion_ci(int(count), total, confidence)
        out.append((str(name), count, share or {"mean": None, "ci_low": None, "ci_high": None}))
    return out
