"""One error type for bad user input, so every entry point can report it the same way.

The CLI turns :class:`InputError` into a one-line message and exit code 2 (click's convention for
bad usage or bad input); anything else is an internal failure (exit 1).
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input, located as precisely as we can: file, line/row and column.

    Args:
        message: what is wrong, in words a user can act on.
        path: the offending file, if any.
        line: 1-based line number in a text file (CSV, JSONL), if known.
        row: 1-based data row number in a binary table (Parquet), if known.
        column: the offending column or field name, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.row = row
        self.column = column
        super().__init__(self.format())

    def format(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message
