"""How one checkpoint's failure landscape differs from another's (``failtrace compare``).

Two profile tables, ``old`` (the baseline, e.g. the champion) and ``new`` (the candidate), each of
one model, are compared task by task:

- side by side: regime shares (Wilson intervals, ``proportion_ci``), mean rescue of every
  operator (bootstrap intervals over units, ``mean_ci``), the policy the honest protocol selects
  (cross-fitted on that side's units), and pass@k when the caller knows it (a logged run has it;
  a profile table cannot: fully solved problems have no row);
- paired: problems of the same task in both tables (matched by ``problem_id``) get a regime in
  each, counted in a 3x3 transition table (rows: old regime, columns: new regime). A profile table
  only holds failure units, so a problem in ``old`` only *stopped failing* (every rollout of the new
  checkpoint was correct) and one in ``new`` only *started failing*; both are counted apart;
- paired change in rescue per operator, ``new - old`` on the paired problems: the mean difference
  with the analysis's bootstrap interval on the scale of a difference ([-1, 1]), and a two-sided
  exact sign test on the non-zero differences (:func:`scipy.stats.binomtest` with p = 1/2).

Every interval follows the analysis's rules (:mod:`lm_failtrace.analysis._stats`): fewer than 10
units give no interval (``too_few``), which reports show as "too few units".

Both sides are labelled with one operator set (the operators both tables hold, or the configured
ones), so a regime means the same thing on each side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import UnitArrays, unit_arrays
from lm_failtrace.analysis._defaults import TOLERANCE
from lm_failtrace.analysis._honest import selection_at_budget
from lm_failtrace.analysis._regimes import REGIMES
from lm_failtrace.analysis._stats import (
    DIFFERENCE,
    MIN_UNITS_FOR_INTERVAL,
    mean_ci,
    proportion_ci,
)
from lm_failtrace.analysis._threads import single_threaded
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import ProfileData, ProfileTable, as_profile_table

#: Layout version of the comparison document.
COMPARE_FORMAT = 1

#: Paired problems whose regime changed that the document lists by name (the counts are complete).
MAX_LISTED = 50

#: How each number of the document was computed (printed with it).
METHODS: dict[str, str] = {
    "shares": "regime share = units in the regime / failure units, with a Wilson score interval",
    "rescue": "mean rescue rate over the units where the operator was assayed, with a BCa "
    "bootstrap interval over units",
    "selection": "the honest protocol's selected policy: repeated K-fold cross-fitting on that "
    "side's units of the task (as failtrace analyze)",
    "pairing": "problems matched by task and problem_id; a problem in one table only stopped or "
    "started failing (a profile table holds failure units only; both runs are assumed to cover "
    "the same problems)",
    "paired_rescue": "new - old rescue per paired problem where both assayed the operator: mean "
    "with a BCa bootstrap interval over problems, within [-1, 1]; two-sided exact sign test on "
    "the non-zero differences (scipy.stats.binomtest, p = 1/2), zero differences dropped",
    "too_few": f"fewer than {MIN_UNITS_FOR_INTERVAL} units: no interval (too few units)",
}


@dataclass(frozen=True)
class CompareSide:
    """What is known about one side besides its profile table (e.g. a registered model version).

    Args:
        label: how the side is named in the output (``v3``, ``champion``); default ``old``/``new``.
        pass_at_k: task -> metric (``pass@1``, ``maj@16``) -> value, when the evaluation logged it.
        logged_selection: task -> the policy selected when the side was logged, if known.
        details: further facts to show as they are (registered model, version, run id).
    """

    label: str | None = None
    pass_at_k: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    logged_selection: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, str] = field(default_factory=dict)


def _one_model(table: ProfileTable, parameter: str) -> str:
    models = list(dict.fromkeys(table.frame["model"]))
    if len(models) > 1:
        raise InputError(
            f"the table holds several models ({', '.join(models)}); each side of a comparison is "
            "one model: give a table of one model",
            path=table.source,
            parameter=parameter,
        )
    return str(models[0])


def _tasks(
    tables: tuple[ProfileTable, ...], labels: tuple[str, ...], wanted: tuple[str, ...]
) -> list[str]:
    """The tasks to compare: ``wanted`` (held by both), else the tasks both tables hold alike."""
    have = {
        label: list(dict.fromkeys(t.frame["task"])) for label, t in zip(labels, tables, strict=True)
    }
    if wanted:
        for label, held in have.items():
            missing = [t for t in wanted if t not in held]
            if missing:
                raise InputError(
                    f"{label} has no task {', '.join(missing)} (it has {', '.join(held)})",
                    parameter="tasks",
                )
        return list(dict.fromkeys(wanted))
    (a, old), (b, new) = have.items()
    if set(old) != set(new):
        shared = [t for t in old if t in new]
        hint = (
            f"compare the tasks both hold ({', '.join(shared)}) with `tasks`"
            if shared
            else "a landscape is only comparable on the same task"
        )
        raise InputError(
            f"different tasks: {a} holds {', '.join(old)}; {b} holds {', '.join(new)}; {hint}",
            parameter="tasks",
        )
    return old


def _configs(
    old: ProfileTable, new: ProfileTable, config: AnalysisConfig | None
) -> tuple[AnalysisConfig, AnalysisConfig, list[str]]:
    """One operator set for both sides; each side's features are its own table's."""
    config = config or AnalysisConfig()
    notes: list[str] = []
    operators = config.operators
    if operators is None:
        theirs = new.schema.operators or ()
        operators = tuple(op for op in old.schema.operators or () if op in theirs)
        dropped = sorted(set(old.schema.operators or ()) ^ set(theirs))
        if dropped:
            notes.append(
                f"operator(s) {', '.join(dropped)} left out: only one of the tables measured them"
            )
    shared = replace(config, operators=operators)
    return shared.resolved(old.schema), shared.resolved(new.schema), notes


def _shares(codes: np.ndarray, confidence: float) -> dict[str, dict]:
    counts = np.bincount(codes, minlength=len(REGIMES))
    return {
        regime: {"count": int(counts[j]), **proportion_ci(int(counts[j]), len(codes), confidence)}
        for j, regime in enumerate(REGIMES)
    }


def _side(units: UnitArrays, config: AnalysisConfig, logged: str | None) -> dict:
    """Regime shares, mean rescue per operator and the selected policy of one side's task."""
    codes = pd.Index(REGIMES).get_indexer(units.regime)
    rescue = {
        op: mean_ci(units.R[:, j], config.confidence, config.random_state)
        for j, op in enumerate(config.operators)
    }
    selection = selection_at_budget(units, config)
    out = {
        "n_units": len(units.X),
        "regimes": _shares(codes, config.confidence),
        "rescue": rescue,
        "selection": {k: selection[k] for k in ("selected", "mean", "skipped") if k in selection},
    }
    if logged is not None:
        out["selection"]["logged"] = logged
    return out


def _frame(table: ProfileTable, units: UnitArrays, operators: tuple[str, ...]) -> pd.DataFrame:
    """One task's units: regime and rescue rates, indexed by problem id."""
    frame = pd.DataFrame(units.R, columns=list(operators))
    frame.insert(0, "regime", units.regime)
    frame.index = pd.Index(table.frame["problem_id"], name="problem_id")
    return frame


def _transitions(old: pd.DataFrame, new: pd.DataFrame) -> dict:
    """Regime moves of the paired problems, and the problems in one table only."""
    paired = old.index.intersection(new.index, sort=False)
    before, after = old.loc[paired, "regime"], new.loc[paired, "regime"]
    counts = pd.crosstab(before, after).reindex(index=REGIMES, columns=REGIMES, fill_value=0)
    moved = (before != after).to_numpy()
    listed = sorted(zip(paired[moved], before[moved], after[moved], strict=True))[:MAX_LISTED]
    stopped = old.loc[~old.index.isin(paired), "regime"].value_counts()
    started = new.loc[~new.index.isin(paired), "regime"].value_counts()
    return {
        "n_paired": len(paired),
        "counts": {r: {c: int(counts.at[r, c]) for c in REGIMES} for r in REGIMES},
        "stayed": int((~moved).sum()),
        "moved": int(moved.sum()),
        "stopped_failing": {r: int(stopped.get(r, 0)) for r in REGIMES},
        "started_failing": {r: int(started.get(r, 0)) for r in REGIMES},
        "n_stopped_failing": int(stopped.sum()),
        "n_started_failing": int(started.sum()),
        "moved_problems": [{"problem_id": p, "old": a, "new": b} for p, a, b in listed],
    }


def _paired_rescue(diff: np.ndarray, config: AnalysisConfig) -> dict:
    """Mean paired difference with its interval (on the scale [-1, 1]) and the sign test."""
    diff = diff[np.isfinite(diff)]
    row = mean_ci(diff, config.confidence, config.random_state, bounds=DIFFERENCE)
    improved, worsened = int((diff > TOLERANCE).sum()), int((diff < -TOLERANCE).sum())
    p_value = None
    if improved + worsened:
        p_value = float(stats.binomtest(improved, improved + worsened, 0.5).pvalue)
    return {
        **row,
        "improved": improved,
        "worsened": worsened,
        "unchanged": len(diff) - improved - worsened,
        "p_value": p_value,
    }


def _task_section(
    task: str,
    tables: tuple[ProfileTable, ProfileTable],
    configs: tuple[AnalysisConfig, AnalysisConfig],
    sides: tuple[CompareSide, CompareSide],
) -> dict:
    section, frames = {}, []
    for name, table, config, side in zip(("old", "new"), tables, configs, sides, strict=True):
        mask = (table.frame["task"] == task).to_numpy()
        frame = table.frame.loc[mask].reset_index(drop=True)
        part = ProfileTable(frame, table.schema, table.source)
        units = unit_arrays(part, config)
        section[name] = _side(units, config, side.logged_selection.get(task))
        passk = side.pass_at_k.get(task)
        section[name]["pass_at_k"] = {str(k): float(v) for k, v in passk.items()} if passk else None
        frames.append(_frame(part, units, config.operators))
    old, new = frames
    section["transitions"] = _transitions(old, new)
    paired = old.index.intersection(new.index, sort=False)
    operators = list(configs[0].operators)
    # Rounded: rates are multiples of 1/trials, and 0.3 - 0.2 must equal 0.1 - 0.0 for the test.
    diffs = np.round(
        new.loc[paired, operators].to_numpy(float) - old.loc[paired, operators].to_numpy(float), 9
    )
    section["paired_rescue"] = {
        op: _paired_rescue(diffs[:, j], configs[0]) for j, op in enumerate(operators)
    }
    return section


def _describe(table: ProfileTable, model: str, side: CompareSide, default: str) -> dict:
    return {
        "label": side.label or default,
        "model": model,
        "source": table.source,
        "n_units": len(table),
        "tasks": list(dict.fromkeys(table.frame["task"])),
        **{str(k): str(v) for k, v in side.details.items()},
    }


@single_threaded
def compare(
    old: ProfileData,
    new: ProfileData,
    config: AnalysisConfig | None = None,
    *,
    tasks: tuple[str, ...] = (),
    old_side: CompareSide | None = None,
    new_side: CompareSide | None = None,
) -> dict:
    """Compare two failure landscapes, task by task (see the module docstring).

    Args:
        old: the baseline's profile table (a :class:`ProfileTable`, a DataFrame or a path), of
            one model.
        new: the candidate's, of one model (another model than ``old`` is allowed, and said).
        config: thresholds, cross-fitting and columns; unset operators are those both tables
            hold, unset features each table's own.
        tasks: compare only these tasks (each held by both tables); by default every task, and
            then both tables must hold the same tasks.
        old_side, new_side: labels and what the tables cannot tell (pass@k, logged selection).

    Returns:
        A JSON-able document ``{"format", "old", "new", "same_model", "config", "notes",
        "methods", "tasks": {task: {"old", "new", "transitions", "paired_rescue"}}}``.

    Raises:
        InputError: unreadable table, a side with several models, different tasks (naming both),
            no common ``retry`` operator.
    """
    tables = as_profile_table(old), as_profile_table(new)
    models = _one_model(tables[0], "old"), _one_model(tables[1], "new")
    sides = old_side or CompareSide(), new_side or CompareSide()
    labels = tuple(
        f"{name} ({side.label})" if side.label else name
        for name, side in zip(("old", "new"), sides, strict=True)
    )
    names = _tasks(tables, labels, tasks)
    old_config, new_config, notes = _configs(*tables, config)
    if models[0] != models[1]:
        notes.insert(
            0,
            f"different models: old is {models[0]!r}, new is {models[1]!r} (problems paired by "
            "task and problem_id)",
        )
    for name, side_config in (("old", old_config), ("new", new_config)):
        notes.extend(f"{name}: {note}" for note in side_config.notes)
    configs = old_config, new_config
    settings = old_config.to_dict()
    settings["features"] = {"old": list(old_config.features), "new": list(new_config.features)}
    settings.pop("notes")
    return {
        "format": COMPARE_FORMAT,
        "old": _describe(tables[0], models[0], sides[0], "old"),
        "new": _describe(tables[1], models[1], sides[1], "new"),
        "same_model": models[0] == models[1],
        "config": settings,
        "notes": notes,
        "methods": METHODS,
        "tasks": {task: _task_section(task, tables, configs, sides) for task in names},
    }
