"""Helpers every command shares: input-error handling and JSON output."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

import click
import numpy as np

from lm_failtrace.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


class InputErrorExit(click.ClickException):
    """Bad input: one line on stderr, exit code 2."""

    exit_code = 2


def reports_input_errors(func: F) -> F:
    """Turn :class:`InputError` raised by the library into a clean click error (exit 2)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            raise InputErrorExit(exc.format()) from exc

    return wrapper  # type: ignore[return-value]


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats (-> null) for strict JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def echo_json(document: Any) -> None:
    """Print one strict JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(document), indent=2, allow_nan=False))
