"""What the words of the report mean, one or two sentences each (after docs/method.md).

Plain strings: the template escapes them like any other text. Regime definitions take the
thresholds of the analysis they describe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Operators (method.md section 6).
OPERATORS: dict[str, str] = {
    "retry": "A plain new sample of the same prompt: the baseline every other operator must beat.",
    "sparse_steer": (
        "Sample until the junction detector fires (the specialist demotes what its ancestor "
        "preferred), emit that one token from a mix of specialist and ancestor logits, then "
        "keep sampling."
    ),
    "sparse_steer_random": (
        "The same one-token steer at a random step: a control for where sparse_steer steers."
    ),
    "local_temp": (
        "At the step where the detector fires, draw that one token at a higher temperature "
        "(1.0, 1.5, 2.0), then continue as usual."
    ),
    "dense_steer": (
        "From the detector's step on, every token comes from the mix of specialist and ancestor "
        "logits."
    ),
    "budget": "The same prompt with four times the token budget (black-box).",
    "temp_shift": "The same prompt sampled at temperature 1.0 instead of 0.6 (black-box).",
}

#: Policies of the honest protocol (method.md sections 5 and 8).
POLICIES: dict[str, str] = {
    "paper_rule": (
        "The paper's training-free rule: z-score each feature, send the unit to the operator "
        "mapped to its largest z (the fallback operator when none is positive)."
    ),
    "best_fixed": (
        "Always the single operator with the highest mean rescue, chosen on the training folds "
        "only (on all units once deployed)."
    ),
    "retry": "Always retry: what more sampling alone achieves.",
    "skip": "Opt-in: never repair (no tokens, no rescue): the zero point of the frontier.",
    "ridge_router": (
        "Ours: one ridge regression per operator predicts its rescue from the features; the unit "
        "goes to the best prediction, and stays with the best fixed operator unless the predicted "
        "gain is at least 0.02. With token counts it routes on predicted rescue minus a weight "
        "on tokens, set on the training folds to meet the token budget, and may skip a unit."
    ),
    "gbm_router": (
        "Opt-in: like ridge_router, with gradient-boosted trees (one per operator) predicting "
        "each operator's rescue, so thresholds and interactions of the features can count."
    ),
    "oracle": (
        "Each unit's best operator in hindsight: the ceiling no deployable policy can pass, "
        "not a policy."
    ),
}

#: The two populations the honest protocol scores.
POPULATIONS: dict[str, str] = {
    "all_failures": (
        "Every failure unit of the cell: what a deployed router sees, and where the policy is "
        "selected."
    ),
    "steerable_hard": (
        "Only the steerable units (the paper's Steerable-Hard), as the paper evaluates its rule; "
        "easier to win on, since retry is weak there by construction."
    ),
}

#: Features (method.md sections 2 and 3).
FEATURES: dict[str, str] = {
    "spread": "Share of generated positions where the specialist demoted its ancestor (j > 0).",
    "concentration": "How peaked the demotion pressure is: log10 of its maximum over its mean.",
    "logit_dispersion": "Temperature sensitivity around the junction (log10 logit variance).",
    "answer_entropy": (
        "How scattered the wrong answers are (normalised entropy): high looks like sampling bad "
        "luck."
    ),
    "mode_share": "Share of the failed rollouts giving the most frequent wrong answer.",
    "truncation_rate": "Share of the failed rollouts cut off by the token limit.",
}

#: Other words the report uses.
TERMS: dict[str, str] = {
    "failure unit": (
        "A (model, task, problem) with at least one failed rollout among those recorded."
    ),
    "rescue rate": (
        "For one unit and one operator, the share of trials (best of a few attempts) that reached "
        "the correct answer."
    ),
    "held-out rescue": (
        "Mean rescue of a policy on units it was not fitted on (repeated K-fold cross-fitting)."
    ),
    "tokens per rescue": "Generated tokens spent per rescued trial: the cost of one fix.",
    "held-out tokens per failure unit": (
        "Mean, over held-out units, of the tokens one trial of the operator a policy chose "
        "generates (0 for skip): what the policy spends per failure."
    ),
    "token budget": (
        "The spend policies are compared at, a multiple of always-retry's mean tokens "
        "(--token-budget, default 1). A policy whose paired per-unit overspend has an interval "
        "above 0 is over it and not selected."
    ),
    "skip": "Repair nothing: spend no tokens, rescue nothing (a router's choice at a budget).",
    "frontier": (
        "The policies no other beats on held-out rescue for no more held-out tokens, cheapest "
        "first."
    ),
}


def regimes(delta: float = 0.05, reach: float = 0.50) -> dict[str, str]:
    """Regime definitions (method.md section 4) with the analysis's thresholds."""
    return {
        "steerable": (
            f"Retry is not enough but a bounded intervention is: the best other operator beats "
            f"retry by at least {delta:g} and retry leaves at least {reach:g} to gain "
            "(the paper's Steerable-Hard)."
        ),
        "resample": (
            f"Not steerable, yet some intervention rescues it: retry comes within {delta:g} of "
            f"the best operator or already succeeds more than {1 - reach:g} of the time, so more "
            "sampling does about as well."
        ),
        "beyond_reach": "Not steerable and no operator other than retry ever rescued it.",
    }


def _pick(texts: Mapping[str, str], names: Iterable[str], unknown: str) -> list[tuple[str, str]]:
    return [(str(n), texts.get(str(n), unknown)) for n in dict.fromkeys(names)]


def glossary(config: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group title, [(term, definition)]) for what an analysis with ``config`` shows."""
    operators = config.get("operators") or list(OPERATORS)
    features = config.get("features") or list(FEATURES)
    policies = [*(config.get("policies") or list(POLICIES)), "oracle"]
    return [
        ("Regimes", list(regimes(config.get("delta", 0.05), config.get("reach", 0.50)).items())),
        ("Operators", _pick(OPERATORS, operators, "A registered operator of this installation.")),
        ("Policies", _pick(POLICIES, policies, "A registered policy of this installation.")),
        ("Populations", list(POPULATIONS.items())),
        ("Features", _pick(FEATURES, features, "A feature column of this table.")),
        ("Other terms", list(TERMS.items())),
    ]
