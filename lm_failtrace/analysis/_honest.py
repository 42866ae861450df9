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
operators x 1000.

Two policies are compared by their paired per-unit held-out difference (:func:`paired_difference`),
whose interval, kept in [-1, 1], gives the comparison's one ``outcome``: better, worse, tie or
too_few.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import RepeatedKFold

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import UnitArrays, take
from lm_failtrace.analysis._registry import make_policy
from lm_failtrace.analysis._stats import DIFFERENCE, difference_outcome, mean_ci

#: Name of the per-unit best operator in hindsight: the ceiling, not a deployable policy.
ORACLE = "oracle"


@dataclass
class HeldOut:
    """Held-out scores of one policy: shape (n_repeats, n_units) each."""

    rescue: np.ndarray
    tokens: np.ndarray | None

    @staticmethod
    def concat(parts: list[HeldOut]) -> HeldOut:
        tokens = (
            None if any(p.tokens is None for p in parts) else np.hstack([p.tokens for p in parts])
        )
        return HeldOut(np.hstack([p.rescue for p in parts]), tokens)

    def per_unit(self) -> np.ndarray:
        """Each unit's held-out rescue averaged over repeats."""
        return np.nanmean(self.rescue, axis=0)


def cross_fit(
    units: UnitArrays, config: AnalysisConfig, progress: Callable[[str], None] | None = None
) -> dict[str, HeldOut] | None:
    """Held-out rescue of every configured policy and the oracle (None when < 2 units)."""
    n = len(units.X)
    if n < 2:
        return None
    operators = list(config.operators)
    folds = RepeatedKFold(
        n_splits=min(config.n_folds, n),
        n_repeats=config.n_repeats,
        random_state=config.random_state,
    )
    shape = (config.n_repeats, n)
    out = {
        name: HeldOut(
            np.full(shape, np.nan), None if units.tokens is None else np.full(shape, np.nan)
        )
        for name in config.policies
    }
    n_splits = min(config.n_folds, n)
    for split, (train, test) in enumerate(folds.split(units.X)):
        repeat = split // n_splits
        for name in config.policies:
            policy = make_policy(name, config).fit(units.X[train], units.R[train])
            chosen = policy.predict(units.X[test])
            out[name].rescue[repeat, test] = take(units.R[test], operators, chosen)
            if units.tokens is not None:
                out[name].tokens[repeat, test] = take(units.tokens[test], operators, chosen)
        if progress is not None and (split + 1) % n_splits == 0:
            progress(f"repeat {repeat + 1}/{config.n_repeats}")
    assayed = np.where(np.isnan(units.R), -np.inf, units.R)
    best = np.argmax(assayed, axis=1)
    rows = np.arange(n)
    oracle_tokens = (
        None if units.tokens is None else np.tile(units.tokens[rows, best], (shape[0], 1))
    )
    out[ORACLE] = HeldOut(np.tile(units.R[rows, best], (shape[0], 1)), oracle_tokens)
    return out


def summarize(held: dict[str, HeldOut] | None, config: AnalysisConfig) -> dict:
    """Mean rescue, interval and (when known) rescue per 1k tokens of every policy."""
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
        out[name] = row
    return out


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


#: Tie-break order of policy selection: no intervention, one fixed operator, a feature rule, a
#: fitted router.
SIMPLEST_FIRST: tuple[str, ...] = (
    "retry",
    "best_fixed",
    "paper_rule",
    "ridge_router",
    "gbm_router",
)


def select_policy(held: dict[str, HeldOut] | None, config: AnalysisConfig) -> dict:
    """The deployable policy with the best held-out rescue, with paired margins.

    Margins are :func:`paired_difference` of the selected policy over the runner-up, over the
    best fixed operator and over retry (the same mapping object when the runner-up is one of them,
    so the comparison is computed once); a margin whose interval contains 0 (outcome ``tie``) is
    not evidence that the selected policy is better. Equal means go to the simpler policy
    (:data:`SIMPLEST_FIRST`): nothing is deployed for a tie.
    """
    if held is None:
        return {"skipped": "fewer than 2 units"}
    means = {name: float(np.nanmean(held[name].rescue)) for name in config.policies}

    def simplicity(name: str) -> int:
        return SIMPLEST_FIRST.index(name) if name in SIMPLEST_FIRST else len(SIMPLEST_FIRST)

    ranked = sorted(means, key=lambda k: (-round(means[k], 12), simplicity(k)))
    selected = ranked[0]
    out = {
        "population": "all_failures",
        "selected": selected,
        "mean": means[selected],
        "ranking": [{"policy": k, "mean": means[k]} for k in ranked],
    }
    if len(ranked) > 1:
        out["margin_over_runner_up"] = paired_difference(held, selected, ranked[1], config)
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
