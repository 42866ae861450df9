"""Read and write failure-profile tables (CSV or Parquet) with located validation errors.

Reading is vectorised (pandas with the pyarrow engine) so that a million-unit table validates in
about the time it takes to parse; the slow, row-by-row search only runs to *locate* an error that
the vectorised checks already found.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lm_failtrace.errors import InputError
from lm_failtrace.profiles._schema import ID_COLUMNS, OPTIONAL_COLUMNS, RATE_COLUMNS, ProfileSchema

_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class ProfileTable:
    """A validated profile table: one row per failure unit.

    Attributes:
        frame: the data, identifier columns as strings, numeric columns as float64.
        schema: which columns are features and which are operator rescue rates.
        source: where it came from (a path, or a description), for messages.
    """

    frame: pd.DataFrame
    schema: ProfileSchema
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def cells(self) -> list[str]:
        """Cells in order of first appearance."""
        return list(pd.unique(self.frame["cell"]))

    def cell(self, name: str) -> ProfileTable:
        """The sub-table of one cell (an :class:`InputError` names the known cells if absent)."""
        mask = (self.frame["cell"] == name).to_numpy()
        if not mask.any():
            raise InputError(f"unknown cell {name!r}; the table has {', '.join(self.cells)}")
        return ProfileTable(self.frame.loc[mask].reset_index(drop=True), self.schema, self.source)

    def features(self) -> np.ndarray:
        """Feature matrix, shape (n_units, n_features), in schema order."""
        return self.frame.loc[:, list(self.schema.features)].to_numpy(dtype=float)

    def rescue(self) -> np.ndarray:
        """Rescue-rate matrix, shape (n_units, n_operators); NaN = operator not assayed."""
        return self.frame.loc[:, list(self.schema.operators)].to_numpy(dtype=float)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in _PARQUET_SUFFIXES


def _locate(path: Path, parquet: bool, index: int, column: str, message: str) -> InputError:
    """An error at data row ``index`` (0-based); CSV rows are reported as file lines."""
    if parquet:
        return InputError(message, path=path, row=index + 1, column=column)
    return InputError(message, path=path, line=index + 2, column=column)


def read_profiles(path: str | Path, schema: ProfileSchema | None = None) -> ProfileTable:
    """Read and validate a profile table.

    Args:
        path: a ``.csv`` or ``.parquet`` file.
        schema: column roles; defaults to the paper's three logit features and five operators.

    Raises:
        InputError: the file is missing, empty or unreadable; a required column is missing; a value
            is non-numeric, missing where it is required, or a rate outside [0, 1]; or a
            (cell, problem_id) pair repeats. The message names the file, line/row and column.
    """
    schema = schema or ProfileSchema()
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path=path)
    parquet = _is_parquet(path)
    try:
        if parquet:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS}, engine="pyarrow")
    except InputError:
        raise
    except Exception as exc:  # the parsers raise many types; all mean "not a readable table"
        raise InputError(
            f"cannot read as {'Parquet' if parquet else 'CSV'}: {exc}", path=path
        ) from exc
    return validate_profiles(frame, schema, source=path, parquet=parquet)


def validate_profiles(
    frame: pd.DataFrame,
    schema: ProfileSchema | None = None,
    *,
    source: str | Path = "<memory>",
    parquet: bool = True,
) -> ProfileTable:
    """Validate an in-memory frame as a profile table (see :func:`read_profiles`)."""
    schema = schema or ProfileSchema()
    path = Path(source)
    if len(frame) == 0:
        raise InputError("the table has no rows", path=path)
    header_error = (
        (lambda col, msg: InputError(msg, path=path, column=col))
        if parquet
        else (lambda col, msg: InputError(msg, path=path, line=1, column=col))
    )
    for col in (*schema.id_columns, *schema.features, *schema.operators):
        if col not in frame.columns:
            role = (
                "feature"
                if col in schema.features
                else "operator"
                if col in schema.operators
                else "identifier"
            )
            raise header_error(
                col,
                f"missing {role} column (columns present: {', '.join(map(str, frame.columns))})",
            )
    frame = frame.copy()
    for col in schema.id_columns:
        values = frame[col]
        missing = values.isna().to_numpy()
        if missing.any():
            raise _locate(path, parquet, int(np.argmax(missing)), col, "missing identifier")
        frame[col] = values.astype(str)
    optional = [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    for col in (*schema.features, *schema.operators, *optional):
        frame[col] = _numeric(frame[col], path, parquet, col, required=col in schema.features)
        values = frame[col].to_numpy()
        if col in schema.operators or col in RATE_COLUMNS:
            bad = (values < 0) | (values > 1)
            if bad.any():
                i = int(np.argmax(bad))
                raise _locate(path, parquet, i, col, f"rate {float(values[i])!r} is outside [0, 1]")
        if col in schema.features:
            bad = ~np.isfinite(values)
            if bad.any():
                i = int(np.argmax(bad))
                raise _locate(
                    path, parquet, i, col, f"feature value {float(values[i])!r} is not finite"
                )
    dup = frame.duplicated(subset=["cell", "problem_id"], keep="first").to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        key = (frame["cell"].iat[i], frame["problem_id"].iat[i])
        raise _locate(path, parquet, i, "problem_id", f"duplicate (cell, problem_id) {key!r}")
    return ProfileTable(frame.reset_index(drop=True), schema, str(source))


def _numeric(
    values: pd.Series, path: Path, parquet: bool, col: str, *, required: bool
) -> pd.Series:
    """Coerce to float64; a non-numeric value (or a missing one when required) is an error."""
    if pd.api.types.is_bool_dtype(values.dtype):
        raise _locate(path, parquet, 0, col, "boolean values where numbers are expected")
    if pd.api.types.is_numeric_dtype(values.dtype):
        out = values.astype("float64")
    else:
        out = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = (out.isna() & values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise _locate(path, parquet, i, col, f"non-numeric value {values.iat[i]!r}")
    if required:
        missing = out.isna().to_numpy()
        if missing.any():
            raise _locate(path, parquet, int(np.argmax(missing)), col, "missing value")
    return out


def write_profiles(table: ProfileTable | pd.DataFrame, path: str | Path) -> Path:
    """Write a profile table atomically (CSV or Parquet by suffix): no partial file on a crash."""
    frame = table.frame if isinstance(table, ProfileTable) else table
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if _is_parquet(path):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a results table is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
