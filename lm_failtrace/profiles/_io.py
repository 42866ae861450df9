"""Read and write failure-profile tables (CSV or Parquet) with located validation errors.

Reading is vectorised (pandas with the pyarrow engine) so that a million-unit table validates in
about the time it takes to parse; the slow, row-by-row search only runs to *locate* an error that
the vectorised checks already found.

A table carries its schema: :func:`write_profiles` records the features and operators in Parquet
metadata (a CSV's schema is what its columns imply), and :func:`read_profiles` returns a table
whose schema is that declaration, narrowed by what the caller asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lm_failtrace.errors import InputError
from lm_failtrace.outputs import atomic_output
from lm_failtrace.profiles._schema import (
    ID_COLUMNS,
    OPTIONAL_COLUMNS,
    RATE_COLUMNS,
    SCHEMA_METADATA_KEY,
    ProfileSchema,
)
from lm_failtrace.rollouts import is_run_file_name

_PARQUET_SUFFIXES = (".parquet", ".pq")
#: Every suffix a profile table may have (CSV otherwise by nothing: an unknown suffix is refused).
TABLE_SUFFIXES = (".csv", *_PARQUET_SUFFIXES)

#: Characters no identifier may hold: C0 and C1 control characters (NUL, newline, escape, ...).
#: They survive CSV and Parquet round trips invisibly and make two names that print alike
#: differ (or, in a CSV, split a row).
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"
#: Separates model and task in a cell's name (:func:`cell_name`), so a model name cannot hold it.
CELL_SEPARATOR = "|"


@dataclass
class ProfileTable:
    """A validated profile table: one row per failure unit.

    Attributes:
        frame: the data, identifier columns as strings, numeric columns as float64.
        schema: which columns are features and which are operator rescue rates (both named:
            what the table declares, or the narrower set its reader asked for).
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


def check_table_path(path: str | Path, parameter: str = "output") -> Path:
    """An output profile table's path, refused unless its suffix says CSV or Parquet, or when
    its name is one of lm-eval's run files (``rollouts_<task>_<timestamp>.parquet`` would be
    read as a run's side-car by the next ``profile`` of its folder).

    Checked before anything is read: a misspelt suffix would otherwise cost a whole run.
    """
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(
            f"unknown output type {path.suffix or '(no suffix)'!r}: use .csv, .parquet or .pq",
            path=path,
            parameter=parameter,
        )
    if is_run_file_name(path.name):
        raise InputError(
            "is named like an lm-eval run file (it would be read as one); choose another name",
            path=path,
            parameter=parameter,
        )
    return path


def _locate(path: Path, parquet: bool, index: int, column: str, message: str) -> InputError:
    """An error at data row ``index`` (0-based); CSV rows are reported as file lines."""
    if parquet:
        return InputError(message, path=path, row=index + 1, column=column)
    return InputError(message, path=path, line=index + 2, column=column)


#: What the pipeline's functions accept as a profile table: read, in memory, or validated.
ProfileData = ProfileTable | pd.DataFrame | str | Path


def as_profile_table(data: ProfileData, schema: ProfileSchema | None = None) -> ProfileTable:
    """Whatever a caller holds as a :class:`ProfileTable`, so every entry point takes all three.

    A :class:`ProfileTable` is used as it is (narrowed to ``schema`` when one is given), a
    DataFrame is validated in memory (no temporary file), a path is read.
    """
    if isinstance(data, ProfileTable):
        if schema is None:
            return data
        return validate_profiles(data.frame, schema, source=data.source, declared=data.schema)
    if isinstance(data, pd.DataFrame):
        return validate_profiles(data, schema)
    return read_profiles(data, schema)


def read_profiles(path: str | Path, schema: ProfileSchema | None = None) -> ProfileTable:
    """Read and validate a profile table.

    Args:
        path: a ``.csv`` or ``.parquet`` file.
        schema: which feature and operator columns to use; ``None`` (or a ``None`` part) keeps
            what the table holds: the schema a Parquet file written by :func:`write_profiles`
            declares, else what the columns imply (:meth:`ProfileSchema.from_frame`).

    Raises:
        InputError: the file is missing, empty or unreadable; a required or requested column is
            missing; a value is non-numeric, missing where it is required, or a rate outside
            [0, 1]; or a (cell, problem_id) pair repeats. The message names the file, line/row
            and column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path=path)
    parquet = _is_parquet(path)
    declared = None
    try:
        if parquet:
            frame, declared = _read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS}, engine="pyarrow")
    except InputError:
        raise
    except Exception as exc:  # the parsers raise many types; all mean "not a readable table"
        raise InputError(
            f"cannot read as {'Parquet' if parquet else 'CSV'}: {exc}", path=path
        ) from exc
    return validate_profiles(frame, schema, source=path, parquet=parquet, declared=declared)


def _read_parquet(path: Path) -> tuple[pd.DataFrame, ProfileSchema | None]:
    """The frame and the schema the file declares (None when no :func:`write_profiles` wrote it).

    Raises:
        InputError: the declaration is there but unreadable (a newer format, or damaged):
            guessing the roles instead would analyse other columns than the writer measured.
    """
    import pyarrow.parquet as pq

    data = pq.read_table(path)
    raw = (data.schema.metadata or {}).get(SCHEMA_METADATA_KEY.encode())
    frame = data.to_pandas()
    if raw is None:
        return frame, None
    try:
        return frame, ProfileSchema.from_json(raw)
    except ValueError as exc:
        raise InputError(
            f"unreadable schema in the metadata entry {SCHEMA_METADATA_KEY!r}: {exc}", path=path
        ) from None


def validate_profiles(
    frame: pd.DataFrame,
    schema: ProfileSchema | None = None,
    *,
    source: str | Path = "<memory>",
    parquet: bool = True,
    declared: ProfileSchema | None = None,
) -> ProfileTable:
    """Validate an in-memory frame as a profile table (see :func:`read_profiles`).

    Args:
        frame: the data.
        schema: the requested columns; ``None`` parts keep the table's own.
        source: where the frame came from, for messages.
        parquet: locate errors by row (Parquet) rather than by file line (CSV).
        declared: the schema the table declares; ``None`` = what its columns imply.
    """
    path = Path(source)
    if len(frame) == 0:
        raise InputError("the table has no rows", path=path)
    implied = declared or ProfileSchema.from_frame(frame)
    schema = (schema or ProfileSchema()).resolved(implied)
    _check_header(frame, schema, path, parquet)
    frame = frame.copy()
    _check_identifiers(frame, schema, path, parquet)
    _check_numbers(frame, schema, path, parquet)
    _check_bookkeeping(frame, path, parquet)
    _check_unique(frame, path, parquet)
    return ProfileTable(frame.reset_index(drop=True), schema, str(source))


def _check_header(frame: pd.DataFrame, schema: ProfileSchema, path: Path, parquet: bool) -> None:
    """Every identifier and requested column exists, checked before any value is read.

    A missing column is the likeliest mistake (a typo, the wrong file) and is reported at the
    header, with the columns that are there, so it is fixed in one try.
    """
    features, operators = schema.features or (), schema.operators or ()
    for col in (*schema.id_columns, *features, *operators):
        if col in frame.columns:
            continue
        role = "feature" if col in features else "operator" if col in operators else "identifier"
        message = f"missing {role} column (columns present: {', '.join(map(str, frame.columns))})"
        if parquet:
            raise InputError(message, path=path, column=col)
        raise InputError(message, path=path, line=1, column=col)


def _check_identifiers(
    frame: pd.DataFrame, schema: ProfileSchema, path: Path, parquet: bool
) -> None:
    """Identifiers are present in every row and become strings (in place).

    Strings, because ids are compared across files: ``7`` from a CSV and ``"7"`` from Parquet
    must name the same problem.
    """
    for col in schema.id_columns:
        values = frame[col]
        missing = values.isna().to_numpy()
        if missing.any():
            raise _locate(path, parquet, int(np.argmax(missing)), col, "missing identifier")
        frame[col] = values.astype(str)
    _check_names(frame, schema, path, parquet)


#: The identifiers that name a cell: few distinct values, even in a million-unit table.
_LABELS = ("cell", "model", "task")


def _check_names(frame: pd.DataFrame, schema: ProfileSchema, path: Path, parquet: bool) -> None:
    """No identifier holds a control character, no model name holds ``|``, and every cell is
    its row's ``model|task``.

    Each distinct (cell, model, task) is checked once, at its first row (a table has a handful;
    checking every row cost a third of reading a million-unit table); problem ids, one per row,
    are scanned whole.
    """
    labels = [c for c in _LABELS if c in schema.id_columns]
    rows = _first_rows(frame, labels)
    firsts = frame.iloc[rows]
    control = "control character in an identifier: {!r}"
    for col in schema.id_columns:
        part, where = (firsts, rows) if col in labels else (frame, None)
        bad = part[col].str.contains(CONTROL_CHARACTERS, regex=True)
        _refuse(bad, part, col, path, parquet, control, where)
    if "model" in labels:
        bad = firsts["model"].str.contains(CELL_SEPARATOR, regex=False)
        message = (
            f"a model name cannot hold {CELL_SEPARATOR!r} (it separates model and task in a "
            "cell's name): {!r}"
        )
        _refuse(bad, firsts, "model", path, parquet, message, rows)
    if len(labels) == len(_LABELS):
        bad = firsts["cell"] != firsts["model"] + CELL_SEPARATOR + firsts["task"]
        message = "cell {!r} is not model|task of its row"
        _refuse(bad, firsts, "cell", path, parquet, message, rows)


def _first_rows(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The position of the first row of each distinct combination of ``columns``, ascending."""
    if not columns:
        return np.arange(0)
    key = np.zeros(len(frame), dtype=np.int64)
    for col in columns:
        codes, uniques = pd.factorize(frame[col])
        key = pd.factorize(key * len(uniques) + codes)[0]  # renumbered: stays below len(frame)
    return np.sort(pd.Series(key).drop_duplicates().index.to_numpy())


def _refuse(
    bad: pd.Series,
    frame: pd.DataFrame,
    col: str,
    path: Path,
    parquet: bool,
    message: str,
    rows: np.ndarray | None = None,
) -> None:
    """Raise at the first row where ``bad`` holds; ``message`` formats that row's value.

    ``rows``: the positions in the whole table of ``frame``'s rows, when it is a subset.
    """
    flags = bad.to_numpy(dtype=bool)
    if flags.any():
        i = int(np.argmax(flags))
        value = frame[col].iat[i]
        value = value.item() if isinstance(value, np.generic) else value  # 60.0, not np.float64
        raise _locate(
            path, parquet, i if rows is None else int(rows[i]), col, message.format(value)
        )


def _check_bookkeeping(frame: pd.DataFrame, path: Path, parquet: bool) -> None:
    """The per-unit counts, when present, describe a failure unit (empty values are unknown).

    Rollout counts are whole numbers, a unit has at least one failed rollout and no more failed
    rollouts than rollouts, and its pass rate is below 1: a table of failure units only.
    """
    for col in ("n_rollouts", "n_failed_rollouts"):
        if col in frame.columns:
            values = frame[col]
            bad = values.notna() & ((values % 1 != 0) | (values < 1))
            message = "expected a whole number >= 1 (a failure unit), got {!r}"
            _refuse(bad, frame, col, path, parquet, message)
    if {"n_rollouts", "n_failed_rollouts"} <= set(frame.columns):
        more = frame["n_failed_rollouts"] > frame["n_rollouts"]
        message = "{!r} failed rollouts, more than the row's n_rollouts"
        _refuse(more, frame, "n_failed_rollouts", path, parquet, message)
    if "pass_rate" in frame.columns:
        message = "pass rate {!r}: a unit that never failed is not a failure unit"
        _refuse(frame["pass_rate"] >= 1, frame, "pass_rate", path, parquet, message)


def _check_numbers(frame: pd.DataFrame, schema: ProfileSchema, path: Path, parquet: bool) -> None:
    """Feature, operator and bookkeeping columns become float64 (in place), checked by role.

    Features are required and finite (a routing rule cannot z-score a gap); operators may be
    empty (not assayed); rates lie in [0, 1].
    """
    features, operators = schema.features or (), schema.operators or ()
    optional = [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    for col in (*features, *operators, *optional):
        frame[col] = _numeric(frame[col], path, parquet, col, required=col in features)
        checks = []
        values = frame[col].to_numpy()
        if col in operators or col in RATE_COLUMNS:
            checks.append(((values < 0) | (values > 1), "rate {!r} is outside [0, 1]"))
        if col in features:
            checks.append((~np.isfinite(values), "feature value {!r} is not finite"))
        for bad, message in checks:
            if bad.any():
                i = int(np.argmax(bad))
                raise _locate(path, parquet, i, col, message.format(float(values[i])))


def _check_unique(frame: pd.DataFrame, path: Path, parquet: bool) -> None:
    """Each (cell, problem_id) appears once: a repeated unit would count twice in every mean."""
    dup = frame.duplicated(subset=["cell", "problem_id"], keep="first").to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        key = (frame["cell"].iat[i], frame["problem_id"].iat[i])
        raise _locate(path, parquet, i, "problem_id", f"duplicate (cell, problem_id) {key!r}")


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


def write_profiles(
    table: ProfileTable | pd.DataFrame, path: str | Path, schema: ProfileSchema | None = None
) -> Path:
    """Write a profile table atomically (CSV or Parquet by suffix): no partial file on a crash.

    Parquet records the schema in the file's metadata (:data:`SCHEMA_METADATA_KEY`), so a reader
    gets exactly the features and operators that were measured; a CSV declares what its columns
    imply.

    Args:
        table: a profile table, or a frame of one.
        path: ``.csv``, ``.parquet`` or ``.pq``.
        schema: the schema to declare; ``None`` (or a ``None`` part): the table's own, or what a
            frame's columns imply.

    Raises:
        ValueError: the schema names a column the frame lacks (the file could not be read back).
    """
    if isinstance(table, ProfileTable):
        frame, own = table.frame, table.schema
    else:
        frame, own = table, ProfileSchema.from_frame(table)
    schema = (schema or ProfileSchema()).resolved(own)
    absent = [c for c in schema.numeric_columns if c not in frame.columns]
    if absent:
        raise ValueError(f"the schema names columns the table lacks: {', '.join(absent)}")
    path = check_table_path(path)
    with atomic_output(path, parameter="output") as tmp:
        if _is_parquet(path):
            _write_parquet(frame, str(tmp), schema)
        else:
            frame.to_csv(tmp, index=False)
    return path


def _write_parquet(frame: pd.DataFrame, path: str, schema: ProfileSchema) -> None:
    """``frame.to_parquet(path, index=False)`` with the schema declared in the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {**(data.schema.metadata or {}), SCHEMA_METADATA_KEY.encode(): schema.to_json()}
    pq.write_table(data.replace_schema_metadata(metadata), path)
