"""Rollouts -> failure-profile table: the body of ``failtrace profile``.

Rollouts are streamed (:mod:`lm_failtrace.rollouts`) into one small running summary per
(model, task, problem): an :class:`~lm_failtrace.rollouts.OutcomeTally` (answer counts
of failed rollouts, finish reasons, token counts) plus sums of the per-rollout logit aggregates.
Memory grows with the number of problems, never with the number or length of rollouts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lm_failtrace.errors import InputError
from lm_failtrace.profiles._io import CELL_SEPARATOR, CONTROL_CHARACTERS
from lm_failtrace.profiles._schema import ID_COLUMNS, LOGIT_FEATURES, ProfileSchema, cell_name
from lm_failtrace.rollouts import FINISH_REASONS, UNIT_COLUMNS, OutcomeTally, Source, discover

#: Per-unit columns after the identifiers, in output order (logit columns follow when present).
PROFILE_COLUMNS: tuple[str, ...] = UNIT_COLUMNS

#: Repeat indices are 0-based positions among one problem's N samples; the bound keeps the
#: per-problem bit set of seen repeats small (8 KiB at most) whatever a table claims.
MAX_REPEAT = 1 << 16

#: Report progress on stderr every this many rollouts.
PROGRESS_EVERY = 250_000

_FINISH = frozenset(FINISH_REASONS)
_CONTROL = re.compile(CONTROL_CHARACTERS)
_LOGIT_KEYS = frozenset(LOGIT_FEATURES)


class _Unit:
    """Running state of one (model, task, problem)."""

    __slots__ = ("file", "logit_n", "logit_sum", "position", "repeats", "source", "tally")

    def __init__(self, source: int, position: int) -> None:
        self.tally = OutcomeTally()
        self.source = source  # index of the source and line/row of the unit's first rollout
        self.position = position
        self.file = source  # the file whose repeat indices ``repeats`` holds
        self.repeats = 0  # bit r set = repeat r seen in ``file``
        self.logit_sum: list[float] | None = None
        self.logit_n: list[int] | None = None


@dataclass(frozen=True)
class CellCounts:
    """What a cell's failure units alone do not tell: its problems, repeats and pass@1.

    Attributes:
        problems: problems recorded, failing or not.
        repeats: rollouts per problem (checked equal across the cell's problems).
        pass_at_1: mean pass rate over all the cell's problems.
    """

    problems: int
    repeats: int
    pass_at_1: float


@dataclass
class ProfileBuild:
    """The outcome of :func:`build_profiles`.

    Attributes:
        frame: the profile table, one row per failure unit, in order of first appearance.
        sources: the files read, in order.
        n_rollouts: rollouts read.
        n_units: (model, task, problem) units seen, failing or not.
        schema: the features measured (the outcome features the rollouts define, the logit
            features when they carry them); no operators.
        cells: (model, task) -> its counts over all problems, failing or not.
    """

    frame: pd.DataFrame
    sources: list[Path]
    n_rollouts: int
    n_units: int
    schema: ProfileSchema
    cells: dict[tuple[str, str], CellCounts] = field(default_factory=dict)


def build_profiles(
    path: str | Path,
    *,
    all_runs: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ProfileBuild:
    """Stream the rollouts under ``path`` into the failure-profile table.

    Args:
        path: an lm-eval output directory, a samples log, a side-car or a generic rollout table
            (see :func:`lm_failtrace.rollouts.discover`).
        all_runs: in a directory, read every run of each task, not only the newest; the runs'
            rollouts are pooled per problem (repeat indices are checked within each file).
        progress: called with a one-line message now and then (the CLI prints it on stderr).

    Returns:
        The table: identifiers (``cell`` = ``model|task``), the columns of
        :data:`PROFILE_COLUMNS` from :class:`~lm_failtrace.rollouts.OutcomeTally`,
        and ``spread``/``concentration``/``logit_dispersion`` (mean over the unit's failed
        rollouts; NaN unless every failed rollout has the value) when any rollout carries them.

    Raises:
        InputError: naming file and line/row: invalid or truncated JSON, a missing or
            ill-typed field, a duplicate (problem_id, repeat), problems of one task with
            different numbers of rollouts, a stock (non-failtrace) samples log, or no rollouts.
    """
    sources = discover(path, all_runs=all_runs)
    units: dict[tuple[str, str, str], _Unit] = {}
    n_rollouts = 0
    seen_logits = [False] * len(LOGIT_FEATURES)
    for index, source in enumerate(sources):
        if progress is not None:
            progress(f"reading {source.path}")
        n_rollouts = _accumulate(source, index, units, seen_logits, n_rollouts, progress)
    if n_rollouts == 0:
        raise InputError("no rollouts in the input", path=path)
    _check_repeats(units, sources)
    logit_columns = [name for name, seen in zip(LOGIT_FEATURES, seen_logits, strict=True) if seen]
    frame = _frame(units, logit_columns)
    return ProfileBuild(
        frame=frame,
        sources=[s.path for s in sources],
        n_rollouts=n_rollouts,
        n_units=len(units),
        cells=_cell_counts(units),
        # The rule a CSV is read back with, so a table's schema does not depend on its format:
        # an outcome feature no rollout defined (no finish reasons known) is not declared.
        schema=ProfileSchema.from_frame(frame),
    )


def _accumulate(
    source: Source,
    index: int,
    units: dict[tuple[str, str, str], _Unit],
    seen_logits: list[bool],
    n_rollouts: int,
    progress: Callable[[str], None] | None,
) -> int:
    """Fold one source's rollouts into ``units``; returns the running rollout count.

    Each field is checked as it is read (by the helpers below), so an error names the rollout's
    file, line/row and field, and nothing but the per-problem summaries is kept.
    """
    for record in source:
        key, answer, correct = _identify(source, record)
        unit = units.get(key)
        if unit is None:
            _check_names(source, key)
            unit = units[key] = _Unit(index, source.position)
        repeat = record.get("repeat")
        if repeat is not None:
            _mark_repeat(source, repeat, unit, index, key)
        tokens, reason = _generation(source, record)
        unit.tally.add(answer, correct, reason, tokens)
        if not correct and not _LOGIT_KEYS.isdisjoint(record):
            _add_logits(source, record, unit, seen_logits)
        n_rollouts += 1
        if progress is not None and n_rollouts % PROGRESS_EVERY == 0:
            progress(f"{n_rollouts:,} rollouts, {len(units):,} problems")
    return n_rollouts


def _identify(
    source: Source, record: dict[str, Any]
) -> tuple[tuple[str, str, str], str | None, bool]:
    """The rollout's unit (model, task, problem id), its answer and whether it is correct.

    Ids and answers become strings because they are compared across files and formats (``7`` in
    one table and ``"7"`` in another are the same problem, the same answer); the model and task
    fall back to the source's (the run folder's) when the row does not name them.
    """
    try:
        problem_id = record["problem_id"]
        answer = record["answer"]
        correct = record["correct"]
    except KeyError as exc:
        raise source.error("missing field", column=exc.args[0]) from None
    model = record.get("model") or source.model
    task = record.get("task") or source.task
    if not model or not isinstance(model, str):
        raise source.error("missing or non-string model name", column="model")
    if not task or not isinstance(task, str):
        raise source.error("missing or non-string task name", column="task")
    if problem_id is None or problem_id == "":
        raise source.error("missing problem id", column="problem_id")
    if answer is not None and type(answer) is not str:
        answer = str(answer)
    return (model, task, str(problem_id)), answer, _correct(source, correct)


def _check_names(source: Source, key: tuple[str, str, str]) -> None:
    """A new unit's identifiers are printable, and its model name can be part of a cell name.

    Checked once per unit, not per rollout: the same rules as a profile table's identifiers.
    """
    for column, value in zip(("model", "task", "problem_id"), key, strict=True):
        if _CONTROL.search(value):
            raise source.error(f"control character in an identifier: {value!r}", column=column)
    if CELL_SEPARATOR in key[0]:
        raise source.error(
            f"a model name cannot hold {CELL_SEPARATOR!r} (it separates model and task in a "
            f"cell's name): {key[0]!r}",
            column="model",
        )


def _correct(source: Source, value: Any) -> bool:
    """``correct`` as a bool; 0/1 are accepted because many harnesses log scores as numbers."""
    if value is True or value is False:
        return value
    if value in (0, 1) and isinstance(value, (int, float)):
        return bool(value)
    raise source.error(f"expected true/false, got {value!r}", column="correct")


def _mark_repeat(
    source: Source, repeat: Any, unit: _Unit, index: int, key: tuple[str, str, str]
) -> None:
    """Record repeat ``repeat`` of the unit, refusing a repeat seen before in the same file.

    A duplicate (problem_id, repeat) means a merged or re-run log that would count a rollout twice;
    repeat indices are only compared within one file because ``--all-runs`` pools runs whose
    repeats legitimately restart at 0.
    """
    if type(repeat) is not int or not 0 <= repeat < MAX_REPEAT:
        raise source.error(
            f"expected a repeat index in [0, {MAX_REPEAT}), got {repeat!r}", column="repeat"
        )
    if unit.file != index:
        unit.file, unit.repeats = index, 0
    bit = 1 << repeat
    if unit.repeats & bit:
        model, task, problem_id = key
        raise source.error(
            f"duplicate (problem_id, repeat) ({problem_id!r}, {repeat}) for model {model!r}, "
            f"task {task!r}",
            column="repeat",
        )
    unit.repeats |= bit


def _generation(source: Source, record: dict[str, Any]) -> tuple[int | None, str | None]:
    """The rollout's token count and finish reason; absent or null = unknown, never guessed.

    A whole float token count (``12.0``, as some JSON writers emit) is accepted as the integer.
    """
    tokens = record.get("generated_tokens")
    if tokens is not None and (type(tokens) is not int or tokens < 0):
        if not (isinstance(tokens, float) and tokens.is_integer() and tokens >= 0):
            raise source.error(
                f"expected an integer >= 0 or null, got {tokens!r}", column="generated_tokens"
            )
        tokens = int(tokens)
    reason = record.get("finish_reason")
    if reason is not None and (type(reason) is not str or reason not in _FINISH):
        raise source.error(
            f"expected 'stop', 'length' or null, got {reason!r}", column="finish_reason"
        )
    return tokens, reason


def _add_logits(source: Source, record: dict[str, Any], unit: _Unit, seen: list[bool]) -> None:
    """Add a failed rollout's logit aggregates (absent or null = unknown) to its unit's sums."""
    for i, name in enumerate(LOGIT_FEATURES):
        value = record.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise source.error(f"expected a finite number or null, got {value!r}", column=name)
        if unit.logit_sum is None or unit.logit_n is None:
            unit.logit_sum = [0.0] * len(LOGIT_FEATURES)
            unit.logit_n = [0] * len(LOGIT_FEATURES)
        unit.logit_sum[i] += value
        unit.logit_n[i] += 1
        seen[i] = True


def _check_repeats(units: dict[tuple[str, str, str], _Unit], sources: list[Source]) -> None:
    """Every problem of one (model, task) must have the same number of rollouts.

    The reference is the most common count; the error names the first problem (in file order)
    that differs, at the line/row of its first rollout.
    """
    counts: dict[tuple[str, str], Counter[int]] = {}
    for (model, task, _), unit in units.items():
        counts.setdefault((model, task), Counter())[unit.tally.n_rollouts] += 1
    for cell, counter in counts.items():
        expected = counter.most_common(1)[0][0]
        if len(counter) == 1:
            continue
        for (model, task, problem_id), unit in units.items():
            if (model, task) == cell and unit.tally.n_rollouts != expected:
                source = sources[unit.source]
                source.position, source.item = unit.position, None
                raise source.error(
                    f"repeats disagree across docs: problem {problem_id!r} of model {model!r}, "
                    f"task {task!r} has {unit.tally.n_rollouts} rollouts but "
                    f"{counter[expected]} other problems have {expected} (a partial or merged "
                    "run?)",
                    column="problem_id",
                )


def _cell_counts(units: dict[tuple[str, str, str], _Unit]) -> dict[tuple[str, str], CellCounts]:
    """Problems, rollouts per problem and mean pass rate of each (model, task)."""
    acc: dict[tuple[str, str], list[float]] = {}  # problems, rollouts, sum of pass rates
    for (model, task, _), unit in units.items():
        tally = unit.tally
        cell = acc.setdefault((model, task), [0, 0, 0.0])
        cell[0] += 1
        cell[1] = tally.n_rollouts
        cell[2] += (tally.n_rollouts - tally.n_failed) / tally.n_rollouts
    return {
        key: CellCounts(problems=int(n), repeats=int(r), pass_at_1=total / n)
        for key, (n, r, total) in acc.items()
    }


def _frame(units: dict[tuple[str, str, str], _Unit], logit_columns: list[str]) -> pd.DataFrame:
    """One row per failure unit (at least one failed rollout), in order of first appearance."""
    rows: list[dict[str, Any]] = []
    for (model, task, problem_id), unit in units.items():
        if unit.tally.n_failed == 0:
            continue
        row: dict[str, Any] = {
            "cell": cell_name(model, task),
            "model": model,
            "task": task,
            "problem_id": problem_id,
        }
        row.update(unit.tally.features())
        sums, counts, n_failed = unit.logit_sum, unit.logit_n, unit.tally.n_failed
        for name in logit_columns:
            i = LOGIT_FEATURES.index(name)
            complete = sums is not None and counts is not None and counts[i] == n_failed
            row[name] = sums[i] / n_failed if complete else math.nan
        rows.append(row)
    columns = [*ID_COLUMNS, *PROFILE_COLUMNS, *logit_columns]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ID_COLUMNS:
        frame[col] = frame[col].astype(str)
    for col in (*PROFILE_COLUMNS, *logit_columns):
        frame[col] = frame[col].astype("float64")
    return frame
