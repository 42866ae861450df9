"""Each operator on its own: mean rescue over the failure units and what one trial costs.

The first question a reader asks of a rescue column ("what does this operator rescue, and at
what cost in tokens?") before any routing: the analysis document answers it per cell and pooled
(``operators``), and report.html draws the same numbers, with the analysis's interval method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lm_failtrace.analysis._stats import mean_ci
from lm_failtrace.profiles import TOKENS_SUFFIX


@dataclass(frozen=True)
class OperatorSummary:
    """One operator over one population of failure units.

    Attributes:
        operator: its name.
        rescue: mean rescue rate over the units it was assayed on, with ``ci_low``/``ci_high``
            (None when too few units) and ``n_units``.
        tokens_per_trial: mean generated tokens of one trial (None: the table has no counts).
        tokens_per_rescue: generated tokens spent per rescued trial (None: unknown, or nothing
            rescued).
    """

    operator: str
    rescue: dict[str, Any]
    tokens_per_trial: float | None
    tokens_per_rescue: float | None

    def to_dict(self) -> dict[str, Any]:
        """The document's entry of this operator (its name is the key)."""
        return {
            "rescue": self.rescue,
            "tokens_per_trial": self.tokens_per_trial,
            "tokens_per_rescue": self.tokens_per_rescue,
        }


def _tokens(frame: pd.DataFrame, operator: str, assayed: np.ndarray) -> np.ndarray | None:
    column = operator + TOKENS_SUFFIX
    if column not in frame.columns:
        return None
    tokens = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)[assayed]
    return tokens if len(tokens) and np.isfinite(tokens).all() else None


def operator_summaries(
    frame: pd.DataFrame,
    operators: Sequence[str],
    confidence: float = 0.95,
    random_state: int = 0,
) -> list[OperatorSummary]:
    """Rescue rate (with interval) and token cost of every operator column ``frame`` holds."""
    out = []
    for operator in operators:
        if operator not in frame.columns:
            continue
        rates = pd.to_numeric(frame[operator], errors="coerce").to_numpy(dtype=float)
        assayed = np.isfinite(rates)
        tokens = _tokens(frame, operator, assayed)
        per_trial = per_rescue = None
        if tokens is not None and len(tokens):
            per_trial = float(tokens.mean())
            rescued = float(rates[assayed].sum())
            per_rescue = float(tokens.sum()) / rescued if rescued > 0 else None
        rescue = mean_ci(rates[assayed], confidence, random_state)
        out.append(OperatorSummary(operator, rescue, per_trial, per_rescue))
    return out
