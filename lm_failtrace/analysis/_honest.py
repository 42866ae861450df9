"""The honest protocol: repeated K-fold cross-fitting of routing policies on held-out units.

Every policy (the paper's rule with statistics from the training folds, the best fixed operator
chosen on the training folds, retry, fitted routers) is fitted on K-1 folds and scored on the
held-out fold; each unit is held out exactly once per repeat. The per-unit oracle (best operator in
hindsight) is the ceiling.

Reported per policy: ``mean`` = mean over repeats of the fold-pooled held-out mean rescue (equal to
the mean of all held-out scores), and a ``confidence`` BCa bootstrap interval over units of each
unit's held-out rescue averaged over repeats, kept in [0, 1] (:func:`lm_failtrace.analysis._stats.
mean_ci`; no interval with fewer than 10 units). When the table has ``<operator>_tokens`` columns,
also rescue per 1,000 generated tokens = total held-out rescue / total tokens of the chosen
operators x 1000, and the held-out spend against the token budget (:mod:`._budget`); selection
then passes over policies over the budget. A population of :data:`LARGE_POPULATION` units or more
may stop after fewer repeats (:func:`cross_fit`).

Two policies are compared by their paired per-unit held-out difference (:func:`paired_difference`),
whose interval, kept in [-1, 1], gives the comparison's one ``outcome``: better, worse, tie or
too_few.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import RepeatedKFold

from lm_failtrace.analysis._budget import Budget, population_budget, spend_rows
from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import UnitArrays, route_columns, take_index
from lm_failtrace.analysis._defaults import LARGE_POPULATION, RETRY, simplicity
from lm_failtrace.analysis._registry import fit_policy, make_policy
from lm_failtrace.analysis._stats import DIFFERENCE, difference_outcome, mean_ci, settled

#: Name of the per-unit best operator in hindsight: the ceiling, not a deployable policy.
ORACLE = "oracle"


@dataclass
class HeldOut:
    """Held-out scores of one policy: shape (n_repeats, n_units) each."""

    rescue: np.ndarray
    tokens: np.ndarray | None

    @staticmethod
    def concat(parts: list[HeldOut]) -> HeldOut:
        """Units of several populations side by side, over the repeats they all have."""
        repeats = min(len(p.rescue) for p in parts)
        tokens = (
            None
            if any(p.tokens is None for p in parts)
            else np.hstack([p.tokens[:repeats] for p in parts])
        )
        return HeldOut(np.hstack([p.rescue[:repeats] for p in parts]), tokens)

    def per_unit(self) -> np.ndarray:
        """Each unit's held-out rescue averaged over repeats."""
        return np.nanmean(self.rescue, axis=0)


def _oracle(units: UnitArrays) -> tuple[np.ndarray, np.ndarray | None]:
    """Per unit: the best rescue in hindsight, and (with token counts) the spend of the cheapest
    operator reaching it; nothing is spent on a unit no operator rescues (``skip``)."""
    rows = np.arange(len(units.R))
    assayed = np.where(np.isnan(units.R), -np.inf, units.R)
    if units.tokens is None:
        return units.R[rows, np.argmax(assayed, axis=1)], None
    top = assayed.max(axis=1)
    cost = np.where(assayed == top[:, None], units.tokens, np.inf)
    best = np.argmin(cost, axis=1)
    spent = np.where(top > 0, units.tokens[rows, best], 0.0)
    return units.R[rows, best], spent


def _fold_scores(
    units: UnitArrays, train: np.ndarray, test: np.ndarray, config: AnalysisConfig
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per policy fitted on ``train``: held-out rescue (and tokens) on ``test``.

    The fold's arrays are sliced once for all policies.
    """
    X, R = units.X[train], units.R[train]
    tokens = None if units.tokens is None else units.tokens[train]
    X_test, R_test = units.X[test], units.R[test]
    tokens_test = None if units.tokens is None else units.tokens[test]
    out = {}
    for name in config.policies:
        policy = fit_policy(make_policy(name, config), X, R, tokens)
        index = route_columns(policy, X_test, config.operators)
        spent = None if tokens_test is None else take_index(tokens_test, index)
        out[name] = (take_index(R_test, index), spent)
    return out


#: Populations of at least this many units stop repeating cross-fitting early (:func:`settled`).
ADAPTIVE_UNITS = LARGE_POPULATION


def _all_settled(rows: dict[str, list[np.ndarray]], scale: float = 1.0) -> bool:
    """:func:`._stats.settled` for every policy's rows of held-out values (divided by
    ``scale``), the standard error over units from each unit's value averaged over repeats."""
    for repeats in rows.values():
        stacked = np.vstack(repeats) / scale
        per_unit = np.nanmean(stacked, axis=0)
        finite = per_unit[np.isfinite(per_unit)]
        over_units = float(np.std(finite)) / np.sqrt(max(len(finite), 1))
        if not settled(np.nanmean(stacked, axis=1), over_units):
            return False
    return True


def cross_fit(
    units: UnitArrays, config: AnalysisConfig, progress: Callable[[str], None] | None = None
) -> dict[str, HeldOut] | None:
    """Held-out rescue of every configured policy and the oracle (None when < 2 units).

    ``config.n_repeats`` repeats of K-fold; a population of at least :data:`ADAPTIVE_UNITS`
    units stops after the first repeat at which every policy's mean rescue, and its spend in
    retry's mean tokens, is :func:`._stats.settled`.
    """
    n = len(units.X)
    if n < 2:
        return None
    n_splits = min(config.n_folds, n)
    splits = RepeatedKFold(
        n_splits=n_splits, n_repeats=config.n_repeats, random_state=config.random_state
    ).split(units.X)
    rescue: dict[str, list[np.ndarray]] = {name: [] for name in config.policies}
    tokens: dict[str, list[np.ndarray]] = {name: [] for name in config.policies}
    done = 0
    for repeat in range(config.n_repeats):
        row = {name: np.full(n, np.nan) for name in config.policies}
        spent = {name: np.full(n, np.nan) for name in config.policies}
        for _ in range(n_splits):
            train, test = next(splits)
            for name, (rescued, held_tokens) in _fold_scores(units, train, test, config).items():
                row[name][test] = rescued
                if held_tokens is not None:
                    spent[name][test] = held_tokens
        for name in config.policies:
            rescue[name].append(row[name])
            tokens[name].append(spent[name])
        done = repeat + 1
        if progress is not None:
            progress(f"repeat {done}/{config.n_repeats}")
        if n >= ADAPTIVE_UNITS and _stop(rescue, tokens, units, config):
            break
    return _held_out(units, rescue, None if units.tokens is None else tokens, done)


def _stop(rescue: dict, tokens: dict, units: UnitArrays, config: AnalysisConfig) -> bool:
    """Every policy's rescue and spend (in retry's mean tokens) :func:`settled`."""
    if not _all_settled(rescue):
        return False
    if units.tokens is None:
        return True
    retry = float(np.mean(units.tokens[:, list(config.operators).index(RETRY)]))
    return _all_settled(tokens, retry if retry > 0 else 1.0)


def _held_out(
    units: UnitArrays, rescue: dict, tokens: dict | None, repeats: int
) -> dict[str, HeldOut]:
    """The repeats' rows as :class:`HeldOut` scores, plus the oracle's (the same every repeat)."""
    out = {
        name: HeldOut(np.vstack(rows), None if tokens is None else np.vstack(tokens[name]))
        for name, rows in rescue.items()
    }
    best, spent = _oracle(units)
    tiled = None if spent is None else np.tile(spent, (repeats, 1))
    out[ORACLE] = HeldOut(np.tile(best, (repeats, 1)), tiled)
    return out


def summarize(
    held: dict[str, HeldOut] | None,
    config: AnalysisConfig,
    spend: Mapping[str, dict] | None = None,
) -> dict:
    """Mean rescue, interval and (when known) rescue per 1k tokens of every policy.

    ``spend`` (:func:`._budget.spend_rows`) adds each policy's held-out tokens and budget status.
    """
    if held is None:
        return {"skipped": "fewer than 2 units"}
    out = {}
    for name, scores in held.items():
        row = mean_ci(scores.per_unit(), config.confidence, config.random_state)
        row["mean"] = float(np.nanmean(scores.rescue))
        if scores.tokens is not None:
            total = float(np.nansum(scores.tokens[~np.isnan(scores.rescue)]))
            row["rescue_per_1k_tokens"] = (
                float(np.nansum(scores.rescue)) / total * 1000 if total > 0 else None
            )
        out[name] = {**row, **(spend or {}).get(name, {})}
    return out


def pool_held(
    parts: list[tuple[dict[str, HeldOut], Budget | None]],
) -> tuple[dict[str, HeldOut], Budget | None]:
    """Held-out scores and budgets of several populations side by side (each policy stays fitted
    within its population, as deployed per model and task)."""
    held = {name: HeldOut.concat([h[name] for h, _ in parts]) for name in parts[0][0]}
    return held, Budget.concat([b for _, b in parts])


def held_and_budget(
    units: UnitArrays, config: AnalysisConfig, progress: Callable[[str], None] | None = None
) -> tuple[dict[str, HeldOut] | None, Budget | None]:
    """:func:`cross_fit` of one population, and its token budget (None without counts)."""
    return cross_fit(units, config, progress), population_budget(units, config)


def selection_at_budget(units: UnitArrays, config: AnalysisConfig) -> dict:
    """Cross-fit one population and select its policy at the token budget."""
    held, budget = held_and_budget(units, config)
    return select_policy(held, config, population_spend(held, budget, config))


def population_spend(
    held: dict[str, HeldOut] | None, budget: Budget | None, config: AnalysisConfig
) -> dict[str, dict] | None:
    """:func:`._budget.spend_rows` of a population (None without held-out scores or counts)."""
    if held is None or budget is None:
        return None
    return spend_rows(held, budget, config)


def paired_difference(
    held: dict[str, HeldOut], policy: str, versus: str, config: AnalysisConfig
) -> dict:
    """Held-out rescue of ``policy`` minus that of ``versus``, paired per unit, with its outcome.

    The per-unit difference (each unit's held-out rescue averaged over repeats) gets the bootstrap
    interval of :func:`mean_ci` on the scale [-1, 1]; ``outcome`` is ``better`` / ``worse`` when
    the interval lies above / below 0, ``tie`` when it covers 0 (not distinguishable), ``too_few``
    without an interval (:func:`difference_outcome`).
    """
    diff = held[policy].per_unit() - held[versus].per_unit()
    row = mean_ci(diff, config.confidence, config.random_state, DIFFERENCE)
    return {"policy": policy, "versus": versus, **row, "outcome": difference_outcome(row)}


def _candidates(ranked: list[str], spend: Mapping[str, dict] | None) -> tuple[list[str], dict]:
    """The policies selection chooses from, best first, and the selection's ``budget`` entry.

    At a budget: the ranked policies not ``over`` it; when every policy is over it, all of
    them cheapest first (the one closest to the budget is deployed, and the entry says so).
    """
    if spend is None:
        return ranked, {"applied": False}
    within = [k for k in ranked if spend[k]["budget_status"] != "over"]
    entry = {
        "applied": True,
        "excluded_over_budget": [k for k in ranked if k not in within],
        "budget_met": bool(within),
    }
    if not within:
        within = sorted(ranked, key=lambda k: spend[k]["tokens"]["mean"])
        entry["note"] = (
            "every policy spends over the budget on held-out units: the cheapest is selected"
        )
    return within, entry


def select_policy(
    held: dict[str, HeldOut] | None,
    config: AnalysisConfig,
    spend: Mapping[str, dict] | None = None,
) -> dict:
    """The deployable policy with the best held-out rescue at the budget, with paired margins.

    With ``spend`` (:func:`population_spend`: the table has token counts) only policies whose
    held-out spend is not over the budget are candidates (:mod:`._budget`); the runner-up is the
    next candidate. Margins are :func:`paired_difference` of the selected policy over the
    runner-up, over the best fixed operator and over retry (the same mapping object when the
    runner-up is one of them, so the comparison is computed once); a margin whose interval
    contains 0 (outcome ``tie``) is not evidence that the selected policy is better. Equal means
    go to the simpler policy (:data:`._defaults.SIMPLEST_FIRST`): nothing is deployed for a tie.
    """
    if held is None:
        return {"skipped": "fewer than 2 units"}
    means = {name: float(np.nanmean(held[name].rescue)) for name in config.policies}
    ranked = sorted(means, key=lambda k: (-round(means[k], 12), simplicity(k)))
    candidates, budget = _candidates(ranked, spend)
    selected = candidates[0]
    out = {
        "population": "all_failures",
        "selected": selected,
        "mean": means[selected],
        "ranking": [_ranking_row(k, means[k], spend) for k in ranked],
        "budget": budget,
    }
    if len(candidates) > 1:
        out["margin_over_runner_up"] = paired_difference(held, selected, candidates[1], config)
    # The gains a reader asks about: over the best fixed operator, and over more sampling alone
    # (the runner-up's margin when it is that policy: one comparison, computed once).
    runner_up = out.get("margin_over_runner_up", {})
    for versus in ("best_fixed", "retry"):
        if versus in held and selected != versus:
            out[f"margin_over_{versus}"] = (
                runner_up
                if runner_up.get("versus") == versus
                else paired_difference(held, selected, versus, config)
            )
    return out


def _ranking_row(name: str, mean: float, spend: Mapping[str, dict] | None) -> dict:
    if spend is None:
        return {"policy": name, "mean": mean}
    row = spend[name]
    return {
        "policy": name,
        "mean": mean,
        "tokens": row["tokens"]["mean"],
        "budget_status": row["budget_status"],
    }
