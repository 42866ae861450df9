"""The arrays every analysis step works on, extracted once from a profile table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._defaults import SKIP
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


def token_matrix(
    frame: pd.DataFrame, operators: list[str] | tuple[str, ...], source: str | None = None
) -> np.ndarray | None:
    """Mean generated tokens per trial of each operator (n, n_operators), or None.

    None when the frame lacks any ``<operator>_tokens`` column, or when an assayed operator's
    column holds no count at all (a rescue column from a run whose backend reported no token
    counts): costs are unknown and the analysis compares rescue alone.

    Raises:
        InputError: a count is missing where its operator was assayed, or negative (located).
    """
    columns = [op + TOKENS_SUFFIX for op in operators]
    if not all(c in frame.columns for c in columns):
        return None
    tokens = frame.loc[:, columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    assayed = ~np.isnan(frame.loc[:, list(operators)].to_numpy(float))
    if (np.isnan(tokens).all(axis=0) & assayed.any(axis=0)).any():
        return None
    bad = np.isnan(tokens) & assayed
    if bad.any() or (tokens < 0).any():
        row, col = np.argwhere(bad | (tokens < 0))[0]
        raise InputError(
            "token count must be a non-negative number where the operator was assayed",
            path=source,
            line=int(row) + 2,
            column=columns[col],
        )
    return tokens


def unit_arrays(table: ProfileTable, config: AnalysisConfig) -> UnitArrays:
    """Check ``table`` against ``config`` (located errors) and extract the arrays."""
    frame = checked_frame(table, config)
    R = frame.loc[:, list(config.operators)].to_numpy(dtype=float)
    labeler = RegimeLabeler(tuple(config.operators), config.delta, config.reach).fit()
    return UnitArrays(
        X=frame.loc[:, list(config.features)].to_numpy(dtype=float),
        R=R,
        tokens=token_matrix(frame, config.operators, table.source),
        cell=frame["cell"].to_numpy(dtype=object),
        model=frame["model"].to_numpy(dtype=object),
        task=frame["task"].to_numpy(dtype=object),
        regime=labeler.predict(R),
    )


def choice_index(operators: list[str] | tuple[str, ...], chosen: np.ndarray) -> np.ndarray:
    """Column of each chosen operator in ``operators``; ``len(operators)`` for :data:`SKIP`."""
    index = pd.Index([*operators, SKIP]).get_indexer(chosen)
    if (index < 0).any():
        raise InputError(f"routed to an operator that is not assayed: {chosen[index < 0][0]!r}")
    return index


def route_columns(
    policy: object, X: np.ndarray, operators: list[str] | tuple[str, ...]
) -> np.ndarray:
    """Each row's route as a column of ``operators`` (``len(operators)`` = skip).

    From the policy's integer routes when it has them (``targets_`` and ``route_index``, as the
    built-in policies do: a few names to look up instead of one per row), else from its names.
    """
    if hasattr(policy, "route_index") and hasattr(policy, "targets_"):
        return choice_index(operators, policy.targets_)[policy.route_index(X)]
    return choice_index(operators, policy.predict(X))


def take_index(matrix: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``matrix[i, index[i]]`` for every row; 0 where ``index`` is the skip column (past the end).

    Skipping spends no tokens and rescues nothing, so the same call serves rescue and tokens.
    """
    out = np.zeros(len(matrix))
    chosen = index < matrix.shape[1]
    rows = np.flatnonzero(chosen)
    out[rows] = matrix[rows, index[rows]]
    return out


def take(matrix: np.ndarray, operators: list[str], chosen: np.ndarray) -> np.ndarray:
    """``matrix[i, column of chosen[i]]`` for every row (vectorised); 0 where ``chosen`` is skip."""
    return take_index(matrix, choice_index(operators, chosen))


def sample_index(n: int, size: int, random_state: int) -> np.ndarray | None:
    """Sorted indices of a seeded random sample of ``size`` of ``n`` units; None when n <= size
    (every unit is used, so a small population is analysed exactly as without sampling)."""
    if n <= size:
        return None
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))
