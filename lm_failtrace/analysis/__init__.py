"""Analysis of failure-profile tables: regimes, routing rules, honest evaluation, clustering.

Public API (implementation modules are private and may move):

- :class:`AnalysisConfig`, :func:`analyze` -> JSON-able analysis document.
- :func:`compare` (+ :class:`CompareSide`) -> how two failure landscapes differ, task by task.
- :func:`fit_router` -> JSON-able deployable router params; :func:`load_router` -> ``.predict(df)``.
- Estimators: :class:`RegimeLabeler`, :class:`PaperRule` (+ batch :func:`route_batch`),
  :class:`BestFixed`, :class:`FixedOperator`, :class:`RidgeRouter`,
  :class:`GradientBoostedRouter` (opt-in); :data:`POLICIES` registry.
"""

from lm_failtrace.analysis._analyze import analyze, published, regime_labels, routing_map
from lm_failtrace.analysis._compare import CompareSide, compare
from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._defaults import DEFAULT_FALLBACK, DEFAULT_MAPPING, TOLERANCE
from lm_failtrace.analysis._deploy import ROUTER_FORMAT, DeployedRouter, fit_router, load_router
from lm_failtrace.analysis._policies import (
    BestFixed,
    FixedOperator,
    GradientBoostedRouter,
    RidgeRouter,
    policy_from_params,
    policy_to_params,
)
from lm_failtrace.analysis._regimes import REGIMES, RegimeLabeler
from lm_failtrace.analysis._registry import POLICIES, make_policy, register_policy
from lm_failtrace.analysis._rule import PaperRule, route_batch
from lm_failtrace.analysis._stats import MIN_UNITS_FOR_INTERVAL, mean_ci, proportion_ci

__all__ = [
    "DEFAULT_FALLBACK",
    "DEFAULT_MAPPING",
    "MIN_UNITS_FOR_INTERVAL",
    "POLICIES",
    "REGIMES",
    "ROUTER_FORMAT",
    "TOLERANCE",
    "AnalysisConfig",
    "BestFixed",
    "CompareSide",
    "DeployedRouter",
    "FixedOperator",
    "GradientBoostedRouter",
    "PaperRule",
    "RegimeLabeler",
    "RidgeRouter",
    "analyze",
    "compare",
    "fit_router",
    "load_router",
    "make_policy",
    "mean_ci",
    "policy_from_params",
    "policy_to_params",
    "proportion_ci",
    "published",
    "regime_labels",
    "register_policy",
    "route_batch",
    "routing_map",
]
