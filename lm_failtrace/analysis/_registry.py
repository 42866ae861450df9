"""The policy registry: policy name -> factory of an unfitted estimator.

Its own module so the configuration can check policy names without importing the policies (which
need the configuration); :mod:`._policies` fills it with the built-in policies at import.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator

from lm_failtrace.errors import InputError

if TYPE_CHECKING:
    from lm_failtrace.analysis._config import AnalysisConfig

#: policy name -> factory building the (unfitted) estimator from a configuration.
POLICIES: dict[str, Callable[[AnalysisConfig], BaseEstimator]] = {}


def register_policy(
    name: str,
) -> Callable[
    [Callable[[AnalysisConfig], BaseEstimator]], Callable[[AnalysisConfig], BaseEstimator]
]:
    """Register a policy factory under ``name`` (used by --policies and the honest protocol)."""

    def decorate(
        factory: Callable[[AnalysisConfig], BaseEstimator],
    ) -> Callable[[AnalysisConfig], BaseEstimator]:
        POLICIES[name] = factory
        return factory

    return decorate


def make_policy(name: str, config: AnalysisConfig) -> BaseEstimator:
    """A fresh, unfitted estimator for policy ``name``."""
    if name not in POLICIES:
        raise InputError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")
    return POLICIES[name](config)


def fit_policy(policy: BaseEstimator, X: Any, R: Any, tokens: Any = None) -> BaseEstimator:
    """``policy.fit(X, R)``, with ``tokens=`` when given and the policy's ``fit`` takes them.

    Token counts are an optional fit parameter (scikit-learn style, like ``sample_weight``): a
    policy that does not weigh cost, a registered one of a user's included, is fitted as before.
    """
    if tokens is not None and "tokens" in inspect.signature(policy.fit).parameters:
        return policy.fit(X, R, tokens=tokens)
    return policy.fit(X, R)
