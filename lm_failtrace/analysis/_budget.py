"""Held-out spend of every policy against the token budget, and the rescue-versus-tokens frontier.

A policy's held-out spend is the mean over held-out failure units of the chosen operator's
``<operator>_tokens`` (mean generated tokens of one trial; ``skip`` spends 0), each unit's value
averaged over repeats, with the BCa interval of :func:`._stats.mean_ci`. The budget is
``token_budget`` x always-retry's mean tokens over the same units. Whether a policy keeps to it
is read from the paired per-unit overspend, ``tokens_i - token_budget x retry_tokens_i``, and its
interval (docs/method.md section 8, *Cost*):

- ``within``: the mean overspend is <= 0 (the policy spends at most the budget);
- ``at_budget``: the mean is above 0 but its interval covers 0: not distinguishable from the
  budget (a router calibrated on training folds to spend exactly the budget lands here about half
  the time on held-out units, by sampling alone);
- ``over``: the interval lies above 0, or the mean is above 0 with too few units for an interval.

Selection passes over ``over`` policies. Without ``<operator>_tokens`` columns nothing here
applies: policies are compared on rescue alone, and the document says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import UnitArrays
from lm_failtrace.analysis._defaults import RETRY, TOLERANCE, simplicity
from lm_failtrace.analysis._stats import difference_outcome, mean_ci

#: Scale of a token count, and of a difference of two.
TOKENS: tuple[float, float] = (0.0, np.inf)
TOKEN_DIFFERENCE: tuple[float, float] = (-np.inf, np.inf)

#: What the document says when the table has no token counts.
NO_TOKENS = (
    "no <operator>_tokens columns: costs unknown, policies compared on rescue alone "
    "(no token budget applied)"
)

#: The selection rule at a budget, as the document states it.
RULE = (
    "best held-out rescue among the policies whose held-out spend is not over the budget "
    "(over = the interval of the paired per-unit overspend lies above 0)"
)


@dataclass(frozen=True)
class Budget:
    """The token budget of one population of failure units.

    Attributes:
        token_budget: the budget as a multiple of always-retry's mean tokens.
        retry_tokens: always-retry's tokens per trial of each unit (row-aligned with the
            population's held-out scores).
    """

    token_budget: float
    retry_tokens: np.ndarray

    @property
    def retry_mean(self) -> float:
        return float(np.mean(self.retry_tokens)) if len(self.retry_tokens) else 0.0

    @property
    def tokens(self) -> float:
        """The budget in tokens per failure unit."""
        return self.token_budget * self.retry_mean

    @staticmethod
    def concat(parts: list[Budget | None]) -> Budget | None:
        """The pooled budget of populations pooled in this order (None if any lacks counts)."""
        if not parts or any(p is None for p in parts):
            return None
        return Budget(parts[0].token_budget, np.concatenate([p.retry_tokens for p in parts]))


def population_budget(units: UnitArrays, config: AnalysisConfig) -> Budget | None:
    """The budget of ``units`` (None when the table has no token counts)."""
    if units.tokens is None:
        return None
    retry = units.tokens[:, list(config.operators).index(RETRY)]
    return Budget(float(config.token_budget), retry)


def _status(over: Mapping, budget: Budget) -> str:
    if over["mean"] is None or over["mean"] <= TOLERANCE * max(1.0, budget.tokens):
        return "within"
    if over["ci_low"] is None or difference_outcome(over) == "better":
        return "over"
    return "at_budget"


def spend_rows(held: Mapping, budget: Budget, config: AnalysisConfig) -> dict[str, dict]:
    """Per policy: held-out ``tokens`` (interval), ``spend_vs_retry``, ``over_budget`` (paired
    overspend in tokens per unit, interval) and ``budget_status`` (module docstring)."""
    out = {}
    for name, scores in held.items():
        per_unit = np.nanmean(scores.tokens, axis=0)
        tokens = mean_ci(per_unit, config.confidence, config.random_state, TOKENS)
        over = mean_ci(
            per_unit - budget.token_budget * budget.retry_tokens,
            config.confidence,
            config.random_state,
            TOKEN_DIFFERENCE,
        )
        retry = budget.retry_mean
        out[name] = {
            "tokens": tokens,
            "spend_vs_retry": (
                tokens["mean"] / retry if retry > 0 and tokens["mean"] is not None else None
            ),
            "over_budget": {**over, "outcome": difference_outcome(over)},
            "budget_status": _status(over, budget),
        }
    return out


def frontier(rows: Mapping[str, Mapping], names: list[str]) -> list[str]:
    """The policies among ``names`` no other beats on held-out rescue at no more spend, cheapest
    first (ties in spend: the higher rescue; equal points: the simpler policy)."""
    points = sorted(
        (rows[n]["tokens"]["mean"], -rows[n]["mean"], simplicity(n), n)
        for n in names
        if rows[n]["tokens"]["mean"] is not None
    )
    out, best = [], -np.inf
    for _, negative_rescue, _, name in points:
        if -negative_rescue > best + TOLERANCE:
            out.append(name)
            best = -negative_rescue
    return out


def budget_section(
    budget: Budget | None, rows: Mapping[str, Mapping] | None, policies: list[str],
    config: AnalysisConfig,
) -> dict:  # fmt: skip
    """The section's ``budget``: the budget in tokens, the frontier and who is over it."""
    if budget is None:
        return {"token_budget": config.token_budget, "applied": False, "note": NO_TOKENS}
    out = {
        "token_budget": config.token_budget,
        "applied": True,
        "retry_tokens": budget.retry_mean,
        "budget_tokens": budget.tokens,
        "rule": RULE,
    }
    if rows is not None:
        out["frontier"] = frontier(rows, policies)
        out["over_budget"] = [p for p in policies if rows[p]["budget_status"] == "over"]
    return out
