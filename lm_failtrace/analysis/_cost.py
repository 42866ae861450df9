"""Cost-aware routing: predicted rescue minus a weight on tokens, with ``skip`` as a choice.

A router that predicts each operator's rescue ``p_j`` for a failure routes it to the choice with
the highest utility ``p_j - lambda * kappa_j``, where ``kappa_j`` is the operator's mean generated
tokens per trial on the training units divided by retry's (so ``lambda`` is in rescue per
retry-sized spend: ``lambda = 0.1`` means one more retry's worth of tokens must buy 0.1 of rescue
rate), and ``skip`` (repair nothing) has utility 0. The router leaves its default, the choice
with the highest *mean* utility on the training units, only for a predicted utility gain of at
least ``min_gain``; with ``lambda = 0`` and no ``skip`` this is exactly the rescue-only routing.

``lambda`` is set on the training units alone (:func:`calibrate`): the smallest value, found by
bisection, at which the router's own routes of those units spend no more than the budget, a
multiple of always-retry's mean tokens there. Above :data:`CALIBRATION_UNITS` training units the
spend and always-retry's mean tokens are both measured on a seeded sample of that many, so that
always-retry meets a budget of 1.0 exactly on the sample too (docs/method.md section 8, *Cost*).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lm_failtrace.analysis._data import sample_index, take_index
from lm_failtrace.analysis._defaults import LARGE_POPULATION, TOLERANCE

#: Training units a cost weight is calibrated on at most (a seeded sample of them above this).
CALIBRATION_UNITS = LARGE_POPULATION

#: Halvings of the bisection interval for the cost weight (2^-50 of its initial width).
_BISECTIONS = 50


def route_choices(utility: np.ndarray, default_index: int, min_gain: float) -> np.ndarray:
    """Index of the best utility per row, unless it beats the default's by < ``min_gain``."""
    best = np.argmax(utility, axis=1)
    rows = np.arange(len(utility))
    keep_default = utility[rows, best] - utility[:, default_index] < min_gain
    return np.where(keep_default, default_index, best)


def with_skip(values: np.ndarray) -> np.ndarray:
    """``values`` with a last column (or entry) of zeros: the utility of ``skip``."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        return np.append(values, 0.0)
    return np.hstack([values, np.zeros((len(values), 1))])


def default_choice(means: np.ndarray, kappa: np.ndarray, lam: float) -> int:
    """The choice with the highest mean utility (ties: listed first; ``skip`` is last)."""
    return int(np.argmax(with_skip(means - lam * kappa)))


def cost_routes(
    pred: np.ndarray, means: np.ndarray, kappa: np.ndarray, lam: float, min_gain: float
) -> np.ndarray:
    """Choice index per row (``len(kappa)`` = skip) of predicted rescues ``pred`` at ``lam``."""
    utility = with_skip(pred - lam * kappa)
    return route_choices(utility, default_choice(means, kappa, lam), min_gain)


@dataclass(frozen=True)
class CostWeight:
    """A calibrated cost weight.

    Attributes:
        kappa: each operator's training mean tokens per trial / retry's (0 where unknown).
        lam: the weight on ``kappa`` (rescue per retry-sized spend).
        budget_tokens: the training budget, tokens per failure unit.
        spend: the router's training spend at ``lam``, tokens per failure unit.
    """

    kappa: np.ndarray
    lam: float
    budget_tokens: float
    spend: float


def relative_costs(tokens: np.ndarray, retry_index: int) -> tuple[np.ndarray, float]:
    """(kappa per operator, always-retry's mean tokens) on training units; kappa 0 if unknown."""
    assayed = ~np.isnan(tokens)
    counts = assayed.sum(axis=0)
    means = np.where(assayed, tokens, 0.0).sum(axis=0) / np.maximum(counts, 1)
    retry = float(means[retry_index]) if counts[retry_index] else 0.0
    kappa = np.where(counts > 0, means / (retry if retry > 0 else 1.0), 0.0)
    return kappa, retry


def _spend(pred: np.ndarray, tokens: np.ndarray, means: np.ndarray, kappa: np.ndarray,
           lam: float, min_gain: float) -> float:  # fmt: skip
    spent = take_index(tokens, cost_routes(pred, means, kappa, lam, min_gain))
    finite = spent[np.isfinite(spent)]  # an operator not assayed on a unit has no count
    return float(finite.mean()) if len(finite) else 0.0


def _upper_weight(pred: np.ndarray, means: np.ndarray, kappa: np.ndarray, min_gain: float) -> float:
    """A weight at which every costly operator loses to skip on every unit (spend 0)."""
    costly = kappa > 0
    finite = np.where(np.isfinite(pred[:, costly]), pred[:, costly], 0.0)
    mean = np.where(np.isfinite(means[costly]), means[costly], 0.0)
    top = max(float(((finite + abs(min_gain)) / kappa[costly]).max(initial=0.0)),
              float((mean / kappa[costly]).max(initial=0.0)))  # fmt: skip
    return 2.0 * top + 1.0


def calibrate(
    pred: np.ndarray,
    tokens: np.ndarray,
    means: np.ndarray,
    retry_index: int,
    token_budget: float,
    min_gain: float,
    random_state: int = 0,
) -> CostWeight:
    """The smallest cost weight whose routes of the training units meet the budget.

    Args:
        pred: predicted rescue of each training unit and operator (-inf = never chosen).
        tokens: the training units' tokens per trial of each operator (NaN = not assayed).
        means: each operator's mean training rescue (-inf = never assayed).
        retry_index: column of ``retry``, whose mean tokens the budget multiplies.
        token_budget: the budget as a multiple of always-retry's mean tokens.
        min_gain: the router's utility gain required to leave its default.
        random_state: seed of the calibration sample (above :data:`CALIBRATION_UNITS` units).
    """
    kappa, retry = relative_costs(tokens, retry_index)
    sample = sample_index(len(pred), CALIBRATION_UNITS, random_state)
    if sample is not None:
        pred, tokens = pred[sample], tokens[sample]
    # Spend and budget on the same units (the sample's retry mean), so always-retry meets a
    # budget of 1.0 exactly; reported in the training units' tokens.
    sampled = relative_costs(tokens, retry_index)[1]
    scale = retry / sampled if retry > 0 and sampled > 0 else 1.0
    budget = token_budget * retry / scale

    def meets(lam: float) -> tuple[bool, float]:
        spend = _spend(pred, tokens, means, kappa, lam, min_gain)
        return spend <= budget * (1 + TOLERANCE) + TOLERANCE, spend

    ok, spend = meets(0.0)
    high = 0.0
    if not ok:
        low, high = 0.0, _upper_weight(pred, means, kappa, min_gain)
        spend = meets(high)[1]
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2
            middle_ok, middle_spend = meets(middle)
            if middle_ok:
                high, spend = middle, middle_spend
            else:
                low = middle
    return CostWeight(kappa, high, token_budget * retry, spend * scale)
