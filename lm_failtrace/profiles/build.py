"""Rollouts -> failure-profile table: the body of ``failtrace profile``.

Rollouts are streamed (:mod:`lm_failtrace.rollouts`) into one small running summary per
(model, task, problem): an :class:`~lm_failtrace.rollouts.OutcomeTally` (answer counts
of failed rollouts, finish reasons, token counts) plus sums of the per-rollout logit aggregates.
Memory grows with the number of problems, never with the number or length of rollouts.

Other runs of the same problems become rescue columns (``rescue=``, ``ladder=``): they are read
the same way, and :mod:`lm_failtrace.profiles.rescue` turns their per-problem counts into columns.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lm_failtrace.errors import InputError
from lm_failtrace.profiles._io import (
    CELL_SEPARATOR,
    CONTROL_CHARACTERS,
    ProfileData,
    ProfileTable,
    as_profile_table,
)
from lm_failtrace.profiles._schema import (
    ID_COLUMNS,
    LOGIT_FEATURES,
    TOKENS_SUFFIX,
    ProfileSchema,
    cell_name,
)
from lm_failtrace.profiles.ladder import split_ladder
from lm_failtrace.profiles.rescue import (
    RETRY,
    ProblemRate,
    RescueColumn,
    by_task,
    check_names,
    check_task_map,
    rescue_column,
    retry_estimate,
)
from lm_failtrace.rollouts import (
    FINISH_REASONS,
    INSPECT,
    UNIT_COLUMNS,
    OutcomeTally,
    ScoreMapping,
    Source,
    discover,
)

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

    __slots__ = (
        "file",
        "logit_n",
        "logit_sum",
        "position",
        "repeats",
        "source",
        "tally",
        "token_sum",
        "tokens_unknown",
    )

    def __init__(self, source: int, position: int) -> None:
        self.tally = OutcomeTally()
        self.source = source  # index of the source and line/row of the unit's first rollout
        self.position = position
        self.file = source  # the file whose repeat indices ``repeats`` holds
        self.repeats = 0  # bit r set = repeat r seen in ``file``
        self.logit_sum: list[float] | None = None
        self.logit_n: list[int] | None = None
        self.token_sum = 0  # over all rollouts (the tally counts failed ones): a rollout's cost
        self.tokens_unknown = 0

    def rate(self, model: str) -> ProblemRate:
        """The problem's pass count and mean tokens per rollout (for rescue columns)."""
        n = self.tally.n_rollouts
        tokens = math.nan if self.tokens_unknown else self.token_sum / n
        return ProblemRate(model, n, n - self.tally.n_failed, tokens)


@dataclass
class _Read:
    """The units of some sources, read and checked."""

    sources: list[Source]
    units: dict[tuple[str, str, str], _Unit]
    n_rollouts: int
    logit_columns: list[str]

    def rates(self) -> dict[tuple[str, str, str], ProblemRate]:
        return {key: unit.rate(key[0]) for key, unit in self.units.items()}

    def errored(self) -> dict[tuple[str, str], int]:
        """Samples without a score (not rollouts), per (model, task) of an Inspect log."""
        out: Counter[tuple[str, str]] = Counter()
        for source in self.sources:
            if source.skipped["errored"] and source.model and source.task:
                out[source.model, source.task] += source.skipped["errored"]
        return dict(out)


@dataclass(frozen=True)
class CellCounts:
    """What a cell's failure units alone do not tell: its problems, repeats and pass@1.

    Attributes:
        problems: problems recorded, failing or not.
        repeats: rollouts per problem (checked equal across the cell's problems, except in an
            Inspect log, where a sample that errored is not a rollout: the most there).
        pass_at_1: mean pass rate over all the cell's problems.
        errored: Inspect samples of the cell that errored without a score (not rollouts).
    """

    problems: int
    repeats: int
    pass_at_1: float
    errored: int = 0


@dataclass
class ProfileBuild:
    """The outcome of :func:`build_profiles`.

    Attributes:
        frame: the profile table, one row per failure unit, in order of first appearance.
        sources: the files read, in order.
        n_rollouts: rollouts read.
        n_units: (model, task, problem) units seen, failing or not.
        schema: the features measured (the outcome features the rollouts define, the logit
            features when they carry them) and the rescue columns, when asked for.
        cells: (model, task) -> its counts over all problems, failing or not.
        rescue: what each rescue column holds (empty without ``rescue`` or ``ladder``).
    """

    frame: pd.DataFrame
    sources: list[Path]
    n_rollouts: int
    n_units: int
    schema: ProfileSchema
    cells: dict[tuple[str, str], CellCounts] = field(default_factory=dict)
    rescue: list[RescueColumn] = field(default_factory=list)


def build_profiles(
    path: str | Path,
    *,
    all_runs: bool = False,
    progress: Callable[[str], None] | None = None,
    scorer: str | None = None,
    score_values: Mapping[str, bool] | None = None,
    rescue: Mapping[str, str | Path] | None = None,
    match_task: Mapping[str, str] | None = None,
    ladder: bool = False,
) -> ProfileBuild:
    """Stream the rollouts under ``path`` into the failure-profile table.

    Args:
        path: an lm-eval output directory, a samples log, a side-car, a generic rollout table,
            an Inspect eval log or a folder of them (see :func:`lm_failtrace.rollouts.discover`).
        all_runs: in a directory, read every run of each task, not only the newest; the runs'
            rollouts are pooled per problem (repeat indices are checked within each file).
        progress: called with a one-line message now and then (the CLI prints it on stderr).
        scorer: the scorer of Inspect logs that decides correctness (default: the first).
        score_values: Inspect score values beyond C/I and 1/0 -> whether they count as correct.
        rescue: rescue column name -> another run of the same problems (any input ``path``
            may be): the column is its pass rate on each failure unit's problem, and
            ``<name>_tokens`` its mean generated tokens per rollout there (empty when it lacks
            the problem). Without a ``retry`` among them, retry's rescue is estimated from the
            unit's own rollouts (docs/method.md section 9).
        match_task: task of ``path`` -> task of the other runs, for a task named otherwise there.
        ladder: ``path`` is a folder of Inspect logs of one model at several settings of one
            knob: the lowest setting is read as the input, each higher one as a rescue column
            named by its setting (:mod:`lm_failtrace.profiles.ladder`).

    Returns:
        The table: identifiers (``cell`` = ``model|task``), the columns of
        :data:`PROFILE_COLUMNS` from :class:`~lm_failtrace.rollouts.OutcomeTally`,
        ``spread``/``concentration``/``logit_dispersion`` (mean over the unit's failed
        rollouts; NaN unless every failed rollout has the value) when any rollout carries them,
        and the rescue columns, each with its ``_tokens`` column.

    Raises:
        InputError: naming file and line/row: invalid or truncated JSON, a missing or
            ill-typed field, a duplicate (problem_id, repeat), problems of one task with
            different numbers of rollouts, a stock (non-failtrace) samples log, or no rollouts;
            an unreadable or unscored Inspect log; naming the parameter: a bad rescue name, a
            task the other run lacks, a ladder that is not one.
    """
    scores = ScoreMapping(scorer, dict(score_values or {}))
    check_names(rescue or {}, (*ID_COLUMNS, *PROFILE_COLUMNS, *LOGIT_FEATURES))
    sources = discover(path, all_runs=all_runs, scores=scores)
    others: list[tuple[str, list[Source]]] = []
    if ladder:
        steps = split_ladder(sources, Path(path))
        sources, others = steps.base, steps.rungs
        check_names([name for name, _ in others], rescue or {})
    others += _discover_others(rescue or {}, all_runs, scores)
    base = _read(sources, progress)
    if base.n_rollouts == 0:
        raise InputError("no rollouts in the input", path=path)
    frame = _frame(base.units, base.logit_columns)
    cells = _cell_counts(base.units, base.errored())
    columns: list[RescueColumn] = []
    if others:
        check_task_map(match_task or {}, {task for _, task in cells})
        frame, columns = _with_rescue(frame, base, others, match_task or {}, progress)
    return ProfileBuild(
        frame=frame,
        sources=[s.path for s in base.sources],
        n_rollouts=base.n_rollouts,
        n_units=len(base.units),
        cells=cells,
        # The rule a CSV is read back with, so a table's schema does not depend on its format:
        # an outcome feature no rollout defined (no finish reasons known) is not declared.
        schema=ProfileSchema.from_frame(frame),
        rescue=columns,
    )


def _discover_others(
    rescue: Mapping[str, str | Path], all_runs: bool, scores: ScoreMapping
) -> list[tuple[str, list[Source]]]:
    """The files of each other run; an input error there names the `rescue` argument too."""
    others = []
    for name, path in rescue.items():
        try:
            others.append((name, discover(path, all_runs=all_runs, scores=scores)))
        except InputError as exc:
            if exc.parameter is not None:
                raise
            raise InputError(exc.message, path=exc.path, parameter="rescue") from None
    return others


def _read(sources: list[Source], progress: Callable[[str], None] | None) -> _Read:
    """Every rollout of ``sources`` folded into per-problem units, checked."""
    units: dict[tuple[str, str, str], _Unit] = {}
    n_rollouts = 0
    seen_logits = [False] * len(LOGIT_FEATURES)
    for index, source in enumerate(sources):
        if progress is not None:
            progress(f"reading {source.path}")
        n_rollouts = _accumulate(source, index, units, seen_logits, n_rollouts, progress)
    _check_repeats(units, sources)
    logit_columns = [name for name, seen in zip(LOGIT_FEATURES, seen_logits, strict=True) if seen]
    return _Read(sources, units, n_rollouts, logit_columns)


def _with_rescue(
    frame: pd.DataFrame,
    base: _Read,
    others: list[tuple[str, list[Source]]],
    match_task: Mapping[str, str],
    progress: Callable[[str], None] | None,
) -> tuple[pd.DataFrame, list[RescueColumn]]:
    """``frame`` with a rescue column (and its tokens) per other run, retry estimated if absent.

    Operator columns come first (retry, then the others in order), then their token columns.
    """
    values, tokens, columns = _rescue_columns(frame, others, match_task, progress)
    if RETRY not in values:
        inputs = tuple(str(s.path) for s in base.sources)
        retry = retry_estimate(frame, base.rates(), inputs)
        values = {RETRY: retry[0], **values}
        tokens = {RETRY: retry[1], **tokens}
        columns.insert(0, retry[2])
    return _assign(frame, values, tokens), columns


def _rescue_columns(
    frame: pd.DataFrame,
    others: list[tuple[str, list[Source]]],
    match_task: Mapping[str, str],
    progress: Callable[[str], None] | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[RescueColumn]]:
    """Each other run's pass rate and mean tokens on ``frame``'s failure units, by name."""
    values: dict[str, np.ndarray] = {}
    tokens: dict[str, np.ndarray] = {}
    columns: list[RescueColumn] = []
    for name, sources in others:
        rates = by_task(_read(sources, progress).rates())
        inputs = tuple(str(s.path) for s in sources)
        values[name], tokens[name], column = rescue_column(frame, rates, name, match_task, inputs)
        columns.append(column)
    return values, tokens, columns


def _assign(
    frame: pd.DataFrame, values: Mapping[str, np.ndarray], tokens: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """``frame`` with the rescue columns, then their ``_tokens`` columns, appended."""
    return frame.assign(**values, **{name + TOKENS_SUFFIX: t for name, t in tokens.items()})


def add_rescue(
    table: ProfileData,
    rescue: Mapping[str, str | Path],
    *,
    match_task: Mapping[str, str] | None = None,
    all_runs: bool = False,
    scorer: str | None = None,
    score_values: Mapping[str, bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProfileTable:
    """A profile table with rescue columns from other runs added: how columns measured by
    ``failtrace repair`` and columns from runs a team already has meet in one table.

    Args:
        table: a profile table (path, DataFrame or :class:`ProfileTable`) that has ``retry``
            (measured by ``repair``), or gets it here (``rescue={"retry": ...}``).
        rescue, match_task, all_runs, scorer, score_values: as in :func:`build_profiles`.

    Returns:
        The table with ``<name>`` and ``<name>_tokens`` appended per rescue column, its schema's
        operators extended by them.

    Raises:
        InputError: a name the table already has, a table without retry, or what
            :func:`build_profiles` refuses in the other runs.
    """
    table = as_profile_table(table)
    frame = table.frame
    check_names(rescue, frame.columns)
    if RETRY not in frame.columns and RETRY not in rescue:
        raise InputError(
            f"the table has no {RETRY!r} column: rescue columns are compared with retry (build "
            "the table from rollouts with `rescue` to estimate it, or give one)",
            parameter="rescue",
        )
    check_task_map(match_task or {}, frame["task"])
    scores = ScoreMapping(scorer, dict(score_values or {}))
    others = _discover_others(rescue, all_runs, scores)
    values, tokens, _ = _rescue_columns(frame, others, match_task or {}, progress)
    operators = (*(table.schema.operators or ()), *values)
    schema = ProfileSchema(features=table.schema.features, operators=operators)
    return ProfileTable(_assign(frame, values, tokens), schema, table.source)


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
        if tokens is None:
            unit.tokens_unknown += 1
        else:
            unit.token_sum += tokens
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
    that differs, at the line/row of its first rollout. Inspect logs are exempt: one log holds
    every epoch of every sample once (repeats are checked), and a sample that errored without a
    score is not a rollout, so its problem has fewer.
    """
    counts: dict[tuple[str, str], Counter[int]] = {}
    for (model, task, _), unit in units.items():
        if sources[unit.source].kind == INSPECT:
            continue
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


def _cell_counts(
    units: dict[tuple[str, str, str], _Unit], errored: Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], CellCounts]:
    """Problems, rollouts per problem, mean pass rate and errored samples of each (model, task)."""
    acc: dict[tuple[str, str], list[float]] = {}  # problems, rollouts, sum of pass rates
    for (model, task, _), unit in units.items():
        tally = unit.tally
        cell = acc.setdefault((model, task), [0, 0, 0.0])
        cell[0] += 1
        cell[1] = max(cell[1], tally.n_rollouts)
        cell[2] += (tally.n_rollouts - tally.n_failed) / tally.n_rollouts
    return {
        key: CellCounts(
            problems=int(n), repeats=int(r), pass_at_1=total / n, errored=errored.get(key, 0)
        )
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
