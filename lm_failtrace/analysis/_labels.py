"""Agreement with known labels: how regimes and routes line up with a categorical column.

``AnalysisConfig.labels`` names any categorical column of the profile table (planted failure
mechanisms in a demo, hand-labelled failure categories elsewhere). Per population it reports:

- the contingency table of labels against regimes, against the paper rule's routes (batch rule,
  z-scores within each cell, as :func:`routing_map`) and against the routes of the selected policy
  (fitted on each cell's units, with their token counts when the table has them, and applied to
  them, as :func:`fit_router` deploys it; ``skip`` is then a route too);
- the adjusted Rand index of each pairing (``sklearn.metrics.adjusted_rand_score``: 1 = the same
  partition, about 0 = chance agreement);
- the cross-validated accuracy of predicting the label from the features, next to the
  majority-class rate (:func:`._recover.cv_accuracy`, the protocol of regime recoverability).

Units without a label are left out of these statistics and counted (``n_missing``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import UnitArrays
from lm_failtrace.analysis._recover import cv_accuracy
from lm_failtrace.analysis._regimes import REGIMES
from lm_failtrace.analysis._registry import fit_policy, make_policy
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import ProfileTable

#: Name of the paper rule in the registry (its routes are always compared).
PAPER_RULE = "paper_rule"


def label_values(table: ProfileTable, config: AnalysisConfig) -> np.ndarray | None:
    """The label of every unit of ``table`` (row order) as a string, ``None`` where missing.

    Returns ``None`` when no label column is configured. Whole floats (a CSV column of integer
    codes with gaps reads as float) print as integers.

    Raises:
        InputError: the configured column is not in the table.
    """
    column = config.labels
    if column is None:
        return None
    frame = table.frame
    if column not in frame.columns:
        raise InputError(
            f"missing label column (columns present: {', '.join(map(str, frame.columns))})",
            path=table.source,
            column=column,
            parameter="labels",
        )
    values = frame[column]
    missing = values.isna().to_numpy()
    present = values[~missing]
    if pd.api.types.is_float_dtype(present.dtype) and (present % 1 == 0).all():
        present = present.astype(np.int64)
    out = np.full(len(values), None, dtype=object)
    out[~missing] = present.astype(str).to_numpy(dtype=object)
    return out


def _routes(units: UnitArrays, policy: str, config: AnalysisConfig) -> np.ndarray:
    """Route of every unit by ``policy``, fitted within each cell on that cell's units.

    The paper rule is the batch rule of :func:`routing_map` (z-scores within the cell's units).
    """
    out = np.empty(len(units.X), dtype=object)
    for cell in pd.unique(units.cell):
        mask = units.cell == cell
        estimator = config.paper_rule() if policy == PAPER_RULE else make_policy(policy, config)
        tokens = None if units.tokens is None else units.tokens[mask]
        fitted = fit_policy(estimator, units.X[mask], units.R[mask], tokens)
        out[mask] = fitted.predict(units.X[mask])
    return out


def _agreement(labels: np.ndarray, groups: np.ndarray, order: tuple[str, ...]) -> dict:
    """Contingency table (rows: labels, sorted; columns: ``order`` then others) and the ARI."""
    table = pd.crosstab(pd.Series(labels, name="label"), pd.Series(groups, name="group"))
    columns = [c for c in order if c in table.columns]
    columns += sorted(c for c in table.columns if c not in columns)
    table = table.reindex(index=sorted(table.index), columns=columns, fill_value=0)
    return {
        "ari": float(adjusted_rand_score(labels, groups)),
        "contingency": {
            "labels": [str(i) for i in table.index],
            "columns": [str(c) for c in table.columns],
            "counts": table.to_numpy(dtype=int).tolist(),
        },
    }


def label_agreement(
    labels: np.ndarray, units: UnitArrays, config: AnalysisConfig, selected: str | None
) -> dict:
    """The ``labels`` section of one population (see the module docstring).

    Args:
        labels: per unit of ``units``, a string or ``None`` (missing).
        units: the population (one cell, or all cells pooled).
        config: the resolved configuration.
        selected: the policy the honest protocol selected for this population (``None``: none).
    """
    known = np.array([v is not None for v in labels], dtype=bool)
    n_missing = int((~known).sum())
    out: dict = {"column": config.labels, "n_units": int(known.sum()), "n_missing": n_missing}
    if n_missing:
        out["note"] = f"{n_missing} unit(s) without a label left out of these statistics"
    if not known.any():
        return {**out, "skipped": "no unit has a label"}
    y = labels[known].astype(str)
    out["counts"] = {str(k): int(v) for k, v in pd.Series(y).value_counts().sort_index().items()}
    out["regime"] = _agreement(y, units.regime[known], REGIMES)
    # Routes come from policies fitted on every unit of the cell (labelled or not), as deployed.
    policies = [PAPER_RULE] + ([selected] if selected and selected != PAPER_RULE else [])
    operators = tuple(config.operators or ())
    out["routes"] = {
        name: _agreement(y, _routes(units, name, config)[known], operators) for name in policies
    }
    out["selected_policy"] = selected
    out["recoverability"] = cv_accuracy(units.X[known], y, config)
    return out
