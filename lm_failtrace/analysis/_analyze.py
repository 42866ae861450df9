"""One call from a profile table to the analysis document (what the CLI prints and MLflow logs)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from lm_failtrace.analysis._budget import Budget, budget_section
from lm_failtrace.analysis._cluster import cluster_units
from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import UnitArrays, checked_frame, prepare, unit_arrays
from lm_failtrace.analysis._honest import (
    ORACLE,
    held_and_budget,
    pool_held,
    population_spend,
    select_policy,
    summarize,
)
from lm_failtrace.analysis._labels import label_agreement, label_values
from lm_failtrace.analysis._operators import operator_summaries
from lm_failtrace.analysis._published import published_by_cell
from lm_failtrace.analysis._recover import cv_accuracy
from lm_failtrace.analysis._regimes import RegimeLabeler, regime_summaries, regime_summary
from lm_failtrace.analysis._threads import single_threaded
from lm_failtrace.analysis._verdicts import section_verdicts
from lm_failtrace.profiles import ProfileData

Progress = Callable[[str], None]

#: The two populations of the honest protocol: Steerable-Hard (as published) and all failures.
POPULATIONS = ("steerable_hard", "all_failures")


def _honest(
    units: UnitArrays, config: AnalysisConfig, progress: Progress | None
) -> tuple[dict, dict]:
    """Held-out scores and token budget of each population (Steerable-Hard, all failures)."""
    steer = held_and_budget(units.subset(units.regime == "steerable"), config)
    every = held_and_budget(units, config, progress)
    held = {"steerable_hard": steer[0], "all_failures": every[0]}
    return held, {"steerable_hard": steer[1], "all_failures": every[1]}


def _section(
    units: UnitArrays, held: dict, budgets: dict[str, Budget | None], config: AnalysisConfig,
    cluster: bool,
) -> dict:  # fmt: skip
    spend = {pop: population_spend(held[pop], budgets[pop], config) for pop in POPULATIONS}
    honest: dict = {pop: summarize(held[pop], config, spend[pop]) for pop in POPULATIONS}
    # Repeats run (fewer than configured where a large population settled early).
    honest["n_repeats"] = {
        pop: None if held[pop] is None else len(held[pop][ORACLE].rescue) for pop in POPULATIONS
    }
    rows = honest["all_failures"] if spend["all_failures"] else None
    section = {
        "n_units": len(units.X),
        "regimes": regime_summary(units.regime, config.confidence),
        "honest": honest,
        "budget": budget_section(budgets["all_failures"], rows, list(config.policies), config),
        "selection": select_policy(held["all_failures"], config, spend["all_failures"]),
        "recoverability": cv_accuracy(units.X, units.regime, config),
    }
    if cluster:
        section["clustering"] = cluster_units(units.X, {"regime": units.regime}, config)
    return section


def _operators(frame: pd.DataFrame, config: AnalysisConfig) -> dict:
    """Each operator's mean rescue (interval) and tokens over ``frame``'s failure units."""
    rows = operator_summaries(frame, config.operators, config.confidence, config.random_state)
    return {row.operator: row.to_dict() for row in rows}


def _add_labels(
    section: dict, labels: np.ndarray | None, units: UnitArrays, config: AnalysisConfig
) -> None:
    """Set ``section["labels"]`` when a label column is configured (``labels`` row-aligned)."""
    if labels is not None:
        selected = section["selection"].get("selected")
        section["labels"] = label_agreement(labels, units, config, selected)


def _pool(parts: list[tuple[dict, dict]]) -> tuple[dict, dict]:
    """Per-cell held-out scores and budgets side by side (policies stay fitted within cells)."""
    held, budgets = {}, {}
    for pop in POPULATIONS:
        cells = [(h[pop], b[pop]) for h, b in parts if h[pop] is not None]
        held[pop], budgets[pop] = pool_held(cells) if cells else (None, None)
    return held, budgets


def _verdicts(name: str, section: dict, held: dict, config: AnalysisConfig) -> list[str]:
    """Set ``section["verdicts"]`` (structured, computed once); their sentences, named."""
    section["verdicts"] = section_verdicts(section, held, config)
    return [f"{name}: {v['text']}" for v in section["verdicts"]]


@single_threaded
def analyze(
    table: ProfileData,
    config: AnalysisConfig | None = None,
    cell: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Regimes, published and honest protocols, policy selection, recoverability and clustering.

    Args:
        table: a profile table: a :class:`ProfileTable`, a DataFrame, or a CSV/Parquet path.
        config: columns, thresholds and cross-fitting; unset columns are the table's
            (:meth:`AnalysisConfig.resolved`, which is the ``config`` the document holds).
        cell: analyse only this cell (an unknown cell is an :class:`InputError`).
        progress: called with short status lines (the CLI prints them on stderr).

    Returns:
        A JSON-able document ``{"config", "cells": {cell: section}, "pooled": section,
        "verdicts"}``; a section holds ``n_units``, ``regimes`` (counts, fractions, Wilson
        ``intervals``), ``operators`` (operator -> its mean ``rescue`` over the units it was
        assayed on, with interval, ``tokens_per_trial`` and ``tokens_per_rescue``, None when
        unknown: :mod:`._operators`), ``published``, ``honest`` (``steerable_hard`` /
        ``all_failures`` -> policy -> mean and interval, :mod:`._stats`, and with token counts
        its held-out ``tokens`` per failure unit and ``budget_status``; ``n_repeats`` per
        population),
        ``budget`` (the token budget in tokens and the rescue-versus-tokens ``frontier``, or why
        no budget applies, :mod:`._budget`), ``selection``, ``verdicts`` (structured,
        :mod:`._verdicts`), ``recoverability``, ``clustering`` and, when ``config.labels`` names
        a column, ``labels`` (:mod:`._labels`); ``pooled`` adds ``model_identification`` and
        clustering agreement with model and cell. The document's
        ``verdicts`` are the sentences of every cell's verdicts (and the pooled ones when there
        are several cells), each prefixed with its cell.
    """
    table, config = prepare(table, config)
    if cell is not None:
        table = table.cell(cell)
    units = unit_arrays(table, config)
    frame = checked_frame(table, config)
    labels = label_values(table, config)
    say = progress or (lambda _msg: None)
    codes, names = pd.factorize(units.cell)
    published_cells, published_pooled = published_by_cell(
        units.X, units.R, units.regime == "steerable", codes, list(names), config
    )
    cells, held_parts, verdicts = {}, [], []
    for name in names:
        say(f"cell {name}: cross-fitting {config.n_repeats}x{config.n_folds} folds")
        part = units.subset(units.cell == name)
        held, budgets = _honest(part, config, None)
        held_parts.append((held, budgets))
        section = _section(part, held, budgets, config, cluster=True)
        section["operators"] = _operators(frame.loc[units.cell == name], config)
        section["published"] = published_cells[str(name)]
        _add_labels(section, None if labels is None else labels[units.cell == name], part, config)
        cells[str(name)] = section
        verdicts.extend(_verdicts(str(name), section, held, config))
    say("pooled analysis and clustering")
    pooled_held, pooled_budgets = _pool(held_parts)
    pooled = _section(units, pooled_held, pooled_budgets, config, cluster=False)
    pooled["operators"] = _operators(frame, config)
    pooled["published"] = published_pooled
    pooled["honest"]["note"] = (
        "policies fitted within each cell (as deployed per model and task); held-out rescues pooled"
    )
    pooled["clustering"] = cluster_units(
        units.X, {"regime": units.regime, "model": units.model, "cell": units.cell}, config
    )
    pooled["model_identification"] = cv_accuracy(units.X, units.model, config)
    _add_labels(pooled, labels, units, config)
    pooled_verdicts = _verdicts("pooled", pooled, pooled_held, config)
    if len(cells) > 1:
        verdicts.extend(pooled_verdicts)
    return {
        "config": config.to_dict(),
        "source": table.source,
        "cells": cells,
        "pooled": pooled,
        "verdicts": verdicts,
    }


@single_threaded
def published(table: ProfileData, config: AnalysisConfig | None = None) -> dict:
    """Regimes and the published protocol only (no cross-fitting): fast on millions of units.

    Returns ``{"config", "cells": {cell: {"n_units", "regimes", "published"}}, "pooled": {...}}``.
    """
    table, config = prepare(table, config)
    frame = checked_frame(table, config)
    X = frame.loc[:, list(config.features)].to_numpy(dtype=float)
    R = frame.loc[:, list(config.operators)].to_numpy(dtype=float)
    codes, names = pd.factorize(frame["cell"])
    names = [str(n) for n in names]
    regime = RegimeLabeler(tuple(config.operators), config.delta, config.reach).fit()
    regime = regime.predict_codes(R)
    cells, pooled = published_by_cell(X, R, regime == 0, codes, names, config)
    summaries = regime_summaries(regime, codes, len(names), config.confidence)
    n_units = np.bincount(codes, minlength=len(names))
    return {
        "config": config.to_dict(),
        "cells": {
            name: {"n_units": int(n), "regimes": summary, "published": cells[name]}
            for name, n, summary in zip(names, n_units, summaries, strict=True)
        },
        "pooled": {
            "n_units": len(frame),
            "regimes": regime_summaries(regime, np.zeros_like(codes), 1, config.confidence)[0],
            "published": pooled,
        },
    }


def regime_labels(table: ProfileData, config: AnalysisConfig | None = None) -> np.ndarray:
    """Regime of every unit of ``table`` (row order)."""
    return unit_arrays(*prepare(table, config)).regime


def routing_map(table: ProfileData, config: AnalysisConfig | None = None) -> pd.DataFrame:
    """Per unit: cell, z-score of each feature within its cell, the paper rule's route, regime.

    The z-scores and routes are those of the batch rule applied to each cell's whole population
    (what a figure of the routing map shows); column ``z_<feature>`` per feature.
    """
    table, config = prepare(table, config)
    units = unit_arrays(table, config)
    parts = []
    for name in pd.unique(units.cell):
        part = units.subset(units.cell == name)
        rule = config.paper_rule().fit(part.X)
        frame = pd.DataFrame(
            rule.decision_function(part.X), columns=[f"z_{f}" for f in config.features]
        )
        frame.insert(0, "cell", part.cell)
        frame["route"] = rule.predict(part.X)
        frame["regime"] = part.regime
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)
