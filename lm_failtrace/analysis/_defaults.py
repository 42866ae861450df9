"""Defaults and constants of the analysis (docs/method.md sections 4 and 5), below the rest.

Kept apart from :mod:`._config` so the estimators (:mod:`._rule`, :mod:`._regimes`) can use them
without importing the configuration that builds those estimators.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: The paper's feature -> operator mapping (docs/method.md section 5), logit and outcome features.
DEFAULT_MAPPING: Mapping[str, str] = MappingProxyType(
    {
        "spread": "dense_steer",
        "concentration": "sparse_steer",
        "logit_dispersion": "local_temp",
        "answer_entropy": "retry",
        "mode_share": "sparse_steer",
        "truncation_rate": "budget",
    }
)

#: Operator chosen when every routing z-score is <= 0 (docs/method.md section 5).
DEFAULT_FALLBACK = "sparse_steer_random"

#: Absolute tolerance of threshold and tie comparisons (regime thresholds, z-score ties and the
#: z > 0 test of the routing rule): rescue-rate differences such as 0.15 - 0.10 are
#: 0.04999999999999999 in binary floating point, and z-scores that are equal on paper differ in the
#: last bits depending on summation order. 1e-9 is far below any meaningful difference.
TOLERANCE = 1e-9

#: The operator regimes are measured against (docs/method.md section 4).
RETRY = "retry"

#: The choice that repairs nothing: spends no tokens and rescues nothing (docs/method.md section 8,
#: *Cost*). Routers may choose it when tokens are counted; no operator column may take its name.
SKIP = "skip"

#: From this many units on a population is large (docs/method.md section 8, *Scale*): a mean's
#: interval comes in closed form, cross-fitting and recoverability stop repeating once more repeats
#: would not matter, and cost weights, recoverability and clustering work on a seeded sample of
#: this many units. Smaller populations are analysed exactly as without these shortcuts.
LARGE_POPULATION = 10_000

#: Default token budget: a multiple of always-retry's mean tokens per failure unit (1.0 = the
#: same spend as always retrying).
DEFAULT_TOKEN_BUDGET = 1.0

#: Policies compared by the honest protocol (names in :data:`lm_failtrace.analysis.POLICIES`).
DEFAULT_POLICIES: tuple[str, ...] = ("paper_rule", "best_fixed", "retry", "ridge_router")

#: Tie-break order of policy selection: no spend, no intervention, one fixed operator, a feature
#: rule, a fitted router (other policies after them).
SIMPLEST_FIRST: tuple[str, ...] = (
    "skip",
    "retry",
    "best_fixed",
    "paper_rule",
    "ridge_router",
    "gbm_router",
)


def simplicity(policy: str) -> int:
    """Rank of ``policy`` in :data:`SIMPLEST_FIRST` (lower = simpler)."""
    return SIMPLEST_FIRST.index(policy) if policy in SIMPLEST_FIRST else len(SIMPLEST_FIRST)
