"""The arrays every analysis step works on, extracted once from a profile table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._regimes import RegimeLabeler
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import (
    TOKENS_SUFFIX,
    ProfileData,
    ProfileTable,
    as_profile_table,
    validate_profiles,
)


def prepare(
    data: ProfileData, config: AnalysisConfig | None
) -> tuple[ProfileTable, AnalysisConfig]:
    """The table (from a path, a DataFrame or a table) and the configuration resolved against it.

    Every public analysis function starts here, so each accepts the same inputs and fills unset
    columns from the table the same way (:meth:`AnalysisConfig.resolved`).
    """
    table = as_profile_table(data)
    return table, (config or AnalysisConfig()).resolved(table.schema)


@dataclass
class UnitArrays:
    """Per-unit arrays of one population (rows aligned).

    Attributes:
        X: features (n, n_features), in configuration order.
        R: rescue rates (n, n_operators), NaN = not assayed.
        tokens: mean generated tokens per trial of each operator (n, n_operators), or None when
            the table has no ``<operator>_tokens`` columns.
        cell, model, task: identifiers (object arrays).
        regime: regime label of each unit.
    """

    X: np.ndarray
    R: np.ndarray
    tokens: np.ndarray | None
    cell: np.ndarray
    model: np.ndarray
    task: np.ndarray
    regime: np.ndarray

    def subset(self, mask: np.ndarray) -> UnitArrays:
        return UnitArrays(
            self.X[mask],
            self.R[mask],
            None if self.tokens is None else self.tokens[mask],
            self.cell[mask],
            self.model[mask],
            self.task[mask],
            self.regime[mask],
        )


def checked_frame(table: ProfileTable, config: AnalysisConfig) -> pd.DataFrame:
    """The table's frame, re-validated when it was read with columns other than ``config``'s.

    So a missing or non-numeric configured feature is reported with its file, line and column.
    """
    if table.schema.features != tuple(config.features) or table.schema.operators != tuple(
        config.operators
    ):
        table = validate_profiles(table.frame, config.schema, source=table.source)
    return table.frame


def unit_arrays(table: ProfileTable, config: AnalysisConfig) -> UnitArrays:
    """Check ``table`` against ``config`` (located errors) and extract the arrays."""
    frame = checked_frame(table, config)
    token_cols = [op + TOKENS_SUFFIX for op in config.operators]
    tokens = None
    if all(c in frame.columns for c in token_cols):
        tokens = frame.loc[:, token_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        bad = np.isnan(tokens) & ~np.isnan(frame.loc[:, list(config.operators)].to_numpy(float))
        if bad.any() or (tokens < 0).any():
            row, col = np.argwhere(bad | (tokens < 0))[0]
            raise InputError(
                "token count must be a non-negative number where the operator was assayed",
                path=table.source,
                line=int(row) + 2,
                column=token_cols[col],
            )
    R = frame.loc[:, list(config.operators)].to_numpy(dtype=float)
    labeler = RegimeLabeler(tuple(config.operators), config.delta, config.reach).fit()
    return UnitArrays(
        X=frame.loc[:, list(config.features)].to_numpy(dtype=float),
        R=R,
        tokens=tokens,
        cell=frame["cell"].to_numpy(dtype=object),
        model=frame["model"].to_numpy(dtype=object),
        task=frame["task"].to_numpy(dtype=object),
        regime=labeler.predict(R),
    )


def take(matrix: np.ndarray, operators: list[str], chosen: np.ndarray) -> np.ndarray:
    """``matrix[i, column of chosen[i]]`` for every row (vectorised)."""
    index = pd.Index(operators).get_indexer(chosen)
    if (index < 0).any():
        raise InputError(f"routed to an operator that is not assayed: {chosen[index < 0][0]!r}")
    return matrix[np.arange(len(matrix)), index]
