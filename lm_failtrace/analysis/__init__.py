"""Analysis of failure-profile tables: regimes, routing rules, honest evaluation, clustering.

Public API (implementation modules are private and may move):

- :class:`AnalysisConfig`, :func:`analyze` -> JSON-able analysis document.
- :func:`operator_summaries` -> each operator's mean rescue and tokens (:class:`OperatorSummary`).
- :func:`compare` (+ :class:`CompareSide`) -> how two failure landscapes differ, task by task.
- :func:`fit_router` -> JSON-able deployable router params; :func:`load_router` -> ``.predict(df)``
  (an operator name per row, or :data:`SKIP`: repair nothing, when the router weighs tokens).
- Estimators: :class:`RegimeLabeler`, :class:`PaperRule` (+ batch :func:`route_batch`),
  :class:`BestFixed`, :class:`FixedOperator`, :class:`RidgeRouter`,
  :class:`GradientBoostedRouter` (opt-in); :data:`POLICIES` registry; :func:`fit_policy` fits
  one with the table's token counts (:func:`token_matrix`) where it weighs them.
"""

from lm_failtrace.analysis._analyze import analyze, published, regime_labels, routing_map
from lm_failtrace.analysis._compare import CompareSide, compare
from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import token_matrix
from lm_failtrace.analysis._defaults import (
    DEFAULT_FALLBACK,
    DEFAULT_MAPPING,
    DEFAULT_TOKEN_BUDGET,
    SKIP,
    TOLERANCE,
)
from lm_failtrace.analysis._deploy import ROUTER_FORMAT, DeployedRouter, fit_router, load_router
from lm_failtrace.analysis._operators import OperatorSummary, operator_summaries
from lm_failtrace.analysis._policies import (
    BestFixed,
    FixedOperator,
    GradientBoostedRouter,
    RidgeRouter,
    policy_from_params,
    policy_to_params,
)
from lm_failtrace.analysis._regimes import REGIMES, RegimeLabeler
from lm_failtrace.analysis._registry import POLICIES, fit_policy, make_policy, register_policy
from lm_failtrace.analysis._rule import PaperRule, route_batch
from lm_failtrace.analysis._stats import MIN_UNITS_FOR_INTERVAL, mean_ci, proportion_ci

__all__ = [
    "DEFAULT_FALLBACK",
    "DEFAULT_MAPPING",
    "DEFAULT_TOKEN_BUDGET",
    "MIN_UNITS_FOR_INTERVAL",
    "POLICIES",
    "REGIMES",
    "ROUTER_FORMAT",
    "SKIP",
    "TOLERANCE",
    "AnalysisConfig",
    "BestFixed",
    "CompareSide",
    "DeployedRouter",
    "FixedOperator",
    "GradientBoostedRouter",
    "OperatorSummary",
    "PaperRule",
    "RegimeLabeler",
    "RidgeRouter",
    "analyze",
    "compare",
    "fit_policy",
    "fit_router",
    "load_router",
    "make_policy",
    "mean_ci",
    "operator_summaries",
    "policy_from_params",
    "policy_to_params",
    "proportion_ci",
    "published",
    "regime_labels",
    "register_policy",
    "route_batch",
    "routing_map",
    "token_matrix",
]
