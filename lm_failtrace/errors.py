"""One error type for bad user input, so every entry point can report it the same way.

The CLI turns :class:`InputError` into a one-line message and exit code 2 (click's convention for
bad usage or bad input); anything else is an internal failure (exit 1).

The library speaks the library's language: a bad argument is named by its parameter
(``operators``), and a message refers to other parameters in backticks (`` `checkpoint` ``). The
CLI passes :meth:`InputError.format` a function that names parameters by their flags, so the same
error reads ``--operators: ...`` on the command line and ``parameter 'operators': ...`` in Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

#: A parameter named in a message: a Python identifier in backticks.
_PARAMETER_REF = re.compile(r"`([a-z_][a-z0-9_]*)`")
#: Control characters (C0, DEL, C1): shown escaped, so a message is one line whatever it quotes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """``text`` with control characters escaped as Python does (``\\n``, ``\\x00``)."""
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)


class InputError(ValueError):
    """Bad input, located as precisely as we can: file, line/row and column.

    Args:
        message: what is wrong, in words a user can act on.
        path: the offending file, if any.
        line: 1-based line number in a text file (CSV, JSONL), if known.
        row: 1-based data row number in a binary table (Parquet), if known.
        column: the offending column or field name, if any.
        parameter: the offending argument of the library call (``operators``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        row: int | None = None,
        column: str | None = None,
        parameter: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.row = row
        self.column = column
        self.parameter = parameter
        super().__init__(self.format())

    def format(self, name: Callable[[str], str | None] | None = None) -> str:
        """The one-line message, located (control characters in what it quotes escaped).

        Args:
            name: how the caller's interface names a parameter (the CLI: its flag); ``None``
                for a parameter it does not know. Without it, parameters keep their names.
        """
        message = self.message
        if name is not None:
            message = _PARAMETER_REF.sub(lambda m: name(m[1]) or m[0], message)
        where = []
        if self.parameter is not None:
            flag = name(self.parameter) if name is not None else None
            where.append(flag or f"parameter {self.parameter!r}")
        if self.path is not None:
            where.append(self.path)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return one_line(f"{', '.join(where)}: {message}" if where else message)
