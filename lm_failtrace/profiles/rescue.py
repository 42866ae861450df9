"""Rescue rates from runs a team already has: other runs of the same problems as operators.

A run of the same problems at another setting (more reasoning effort, a larger token limit,
another temperature, a bigger model) answers "would this change fix the failure?" per problem
without generating a token. For each failure unit of BASE, a rescue column ``NAME`` holds OTHER's
pass rate on the same problem (matched by task and problem id) and ``NAME_tokens`` OTHER's mean
generated tokens per rollout on it. A table built from runs alone has no measured ``retry``, so
retry's rescue is estimated from BASE's own rollouts (:func:`retry_estimate`). Definitions:
docs/method.md section 9. Everything here is arithmetic on per-problem counts; reading the runs
is :mod:`lm_failtrace.profiles.build`'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lm_failtrace.errors import InputError
from lm_failtrace.profiles._schema import TOKENS_SUFFIX
from lm_failtrace.rollouts import SETTINGS_SEPARATOR

#: The operator whose rescue every regime is measured against (estimated when not measured).
RETRY = "retry"

#: Names no rescue column may take: the choice to repair nothing (analysis's ``skip``).
RESERVED = frozenset({"skip"})

#: A rescue column's name: a plain identifier, so it reads the same in CSV, flags and MLflow.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Problem ids shown when none of BASE's ids is found in OTHER.
_EXAMPLES = 3


@dataclass(frozen=True)
class ProblemRate:
    """One problem's rollouts in one run: what a rescue column takes from it.

    Attributes:
        model: the run's model.
        n_rollouts: rollouts of the problem.
        n_correct: correct ones among them.
        mean_tokens: mean generated tokens per rollout (NaN when any count is unknown).
    """

    model: str
    n_rollouts: int
    n_correct: int
    mean_tokens: float

    @property
    def pass_rate(self) -> float:
        return self.n_correct / self.n_rollouts


#: Per-problem counts of a run: (model, task, problem id) -> its rate.
Rates = Mapping[tuple[str, str, str], ProblemRate]


@dataclass(frozen=True)
class RescueColumn:
    """What one rescue column of a built table holds (the summary ``profile`` prints).

    Attributes:
        name: the column (``<name>_tokens`` beside it).
        inputs: the files it was read from (BASE's own for an estimated retry).
        models: the models of those runs.
        n_units: failure units with a value.
        n_missing: failure units whose problem the other run lacks (left empty).
        mean: mean rescue over the units with a value (NaN without any).
        mean_tokens: mean of ``<name>_tokens`` over them (NaN when unknown).
        estimated: True for retry estimated from BASE's rollouts (:func:`retry_estimate`).
    """

    name: str
    inputs: tuple[str, ...]
    models: tuple[str, ...]
    n_units: int
    n_missing: int
    mean: float
    mean_tokens: float
    estimated: bool = False


def check_names(names: Iterable[str], taken: Iterable[str]) -> None:
    """Refuse rescue column names that would be ambiguous in a profile table.

    Raises:
        InputError: (parameter ``rescue``) a name that is not an identifier, ends in
            ``_tokens``, is (or pairs with) a column the table has, is reserved, or repeats.
    """
    taken = set(taken)
    seen: set[str] = set()
    for name in names:
        why = None
        if not _NAME.match(name):
            why = "use letters, digits and underscores, not starting with a digit"
        elif name.endswith(TOKENS_SUFFIX) or name + TOKENS_SUFFIX in taken:
            why = f"it would pair with a {TOKENS_SUFFIX!r} column"
        elif name in taken:
            why = "the profile table has that column"
        elif name in RESERVED:
            why = "it names the choice to repair nothing"
        elif name in seen:
            why = "given twice"
        if why is not None:
            raise InputError(f"cannot name a rescue column {name!r}: {why}", parameter="rescue")
        seen.add(name)


def check_task_map(match_task: Mapping[str, str], tasks: Iterable[str]) -> None:
    """Every task ``match_task`` maps must be one of BASE's (a typo would map nothing)."""
    tasks = sorted(set(tasks))
    for task in match_task:
        if task not in tasks:
            raise InputError(
                f"task {task!r} is not a task of the input (its tasks: {', '.join(tasks)})",
                parameter="match_task",
            )


#: OTHER's rates: task -> model -> problem id -> rate.
RatesByTask = dict[str, dict[str, dict[str, ProblemRate]]]


def by_task(rates: Rates) -> RatesByTask:
    """OTHER's per-problem rates indexed for matching: task -> model -> problem id."""
    out: RatesByTask = {}
    for (model, task, problem_id), rate in rates.items():
        out.setdefault(task, {}).setdefault(model, {})[problem_id] = rate
    return out


def other_model(models: Iterable[str], model: str, task: str, label: str) -> str:
    """The model of OTHER whose runs rescue BASE's ``model`` on ``task``.

    OTHER's only model, whatever its name (escalating to another model is an operator too);
    with several, the one named like ``model`` up to its settings (the name before ``@``: a
    ladder of several models pairs each with itself).

    Raises:
        InputError: several models, and not exactly one named like ``model``.
    """
    models = sorted(models)
    if len(models) == 1:
        return models[0]
    stem = model.split(SETTINGS_SEPARATOR)[0]
    same = [m for m in models if m.split(SETTINGS_SEPARATOR)[0] == stem]
    if len(same) == 1:
        return same[0]
    raise InputError(
        f"holds task {task!r} of several models ({', '.join(models)}) and "
        f"{'several' if same else 'none'} named like {model!r} (up to its settings): give the "
        "run of one model",
        path=label,
        parameter="rescue",
    )


def rescue_column(
    frame: pd.DataFrame,
    other: RatesByTask,
    name: str,
    match_task: Mapping[str, str],
    inputs: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, RescueColumn]:
    """OTHER's pass rate and mean tokens for every failure unit of ``frame`` (NaN: missing).

    Args:
        frame: BASE's failure units (``model``, ``task``, ``problem_id``).
        other: OTHER's rates (:func:`by_task`).
        match_task: BASE task -> OTHER task, for tasks named otherwise there.
        inputs: OTHER's files (the first names it in messages).

    Raises:
        InputError: a task of BASE that OTHER lacks, an ambiguous model (:func:`other_model`),
            or a task none of whose problem ids OTHER has (ids that do not match).
    """
    label = inputs[0] if len(inputs) == 1 else f"{name} ({len(inputs)} files)"
    problems: dict[tuple[str, str], dict[str, ProblemRate]] = {}
    for model, task in zip(frame["model"], frame["task"], strict=True):
        if (model, task) not in problems:
            target = _other_task(task, other, match_task, label)
            chosen = other_model(other[target], model, target, label)
            problems[model, task] = other[target][chosen]
    rates = [
        problems[model, task].get(problem_id)
        for model, task, problem_id in zip(
            frame["model"], frame["task"], frame["problem_id"], strict=True
        )
    ]
    values = np.array([math.nan if r is None else r.pass_rate for r in rates], dtype=float)
    tokens = np.array([math.nan if r is None else r.mean_tokens for r in rates], dtype=float)
    _check_overlap(frame, values, problems, label)
    found = ~np.isnan(values)
    summary = RescueColumn(
        name=name,
        inputs=inputs,
        models=tuple(sorted({r.model for r in rates if r is not None})),
        n_units=int(found.sum()),
        n_missing=int((~found).sum()),
        mean=_mean(values[found]),
        mean_tokens=_mean(tokens[found]),
    )
    return values, tokens, summary


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) and not np.isnan(values).any() else math.nan


def _other_task(task: str, other: RatesByTask, match_task: Mapping[str, str], label: str) -> str:
    """OTHER's name of BASE's ``task`` (mapped by ``match_task``), which OTHER must hold."""
    target = match_task.get(task, task)
    if target not in other:
        mapped = f" (mapped from {task!r})" if target != task else ""
        raise InputError(
            f"task {target!r}{mapped} of the input is not in it (its tasks: "
            f"{', '.join(sorted(other)) or 'none'}); map a task named otherwise with "
            f"`match_task` ({task}=TASK)",
            path=label,
            parameter="rescue",
        )
    return target


def _check_overlap(
    frame: pd.DataFrame,
    values: np.ndarray,
    problems: Mapping[tuple[str, str], Mapping[str, ProblemRate]],
    label: str,
) -> None:
    """Each (model, task) must share problem ids with OTHER: none means ids that do not match."""
    found = ~np.isnan(values)
    for model, task in problems:
        rows = ((frame["model"] == model) & (frame["task"] == task)).to_numpy()
        if found[rows].any():
            continue
        theirs = list(problems[model, task])[:_EXAMPLES]
        ours = list(frame.loc[rows, "problem_id"].head(_EXAMPLES))
        raise InputError(
            f"none of the {int(rows.sum())} failure units of task {task!r} has its problem id in "
            f"it (ids here: {', '.join(map(repr, ours))}; there: {', '.join(map(repr, theirs))})",
            path=label,
            parameter="rescue",
        )


def retry_estimate(
    frame: pd.DataFrame, base: Rates, inputs: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, RescueColumn]:
    """Retry's rescue of each failure unit, estimated from the unit's own rollouts.

    With ``n`` rollouts of which ``k`` are correct, the estimate is ``k / (n - 1)``: the pass
    rate of the unit's other rollouts seen from one of its failed rollouts (leave one out). The
    other ``n - 1`` rollouts are independent fresh samples of the same setting, so given that
    one rollout failed this is an unbiased estimate of the chance that a fresh sample succeeds
    (docs/method.md section 9). ``retry_tokens`` is the unit's mean generated tokens per
    rollout: what a fresh sample costs.

    Raises:
        InputError: a failure unit with a single rollout (no other rollout to estimate from).
    """
    rates = [
        base[model, task, problem_id]
        for model, task, problem_id in zip(
            frame["model"], frame["task"], frame["problem_id"], strict=True
        )
    ]
    for rate, cell, problem_id in zip(rates, frame["cell"], frame["problem_id"], strict=True):
        if rate.n_rollouts < 2:
            raise InputError(
                f"problem {problem_id!r} of cell {cell!r} has 1 rollout: retry's rescue is "
                "estimated from a failure unit's other rollouts (at least 2 needed); give a "
                f"measured one with `rescue` ({RETRY}=OTHER, another run at the same setting)",
                parameter="rescue",
            )
    values = np.array([r.n_correct / (r.n_rollouts - 1) for r in rates], dtype=float)
    tokens = np.array([r.mean_tokens for r in rates], dtype=float)
    summary = RescueColumn(
        name=RETRY,
        inputs=inputs,
        models=tuple(sorted({r.model for r in rates})),
        n_units=len(rates),
        n_missing=0,
        mean=_mean(values),
        mean_tokens=_mean(tokens),
        estimated=True,
    )
    return values, tokens, summary
