"""Routing policies compared by the honest protocol, found by name in :data:`POLICIES`.

A policy is a scikit-learn style estimator: ``fit(X, R)`` on training units' features ``X`` and
rescue rates ``R`` (n_units x n_operators, NaN = not assayed), ``predict(X)`` -> operator names.
The built-in policies also route in integers, ``predict(X) == targets_[route_index(X)]``, which
spares a million-unit evaluation its per-row strings.
A policy whose ``fit`` also takes ``tokens`` (the units' mean generated tokens per trial of each
operator, same shape as ``R``) is given them when the table has them (:func:`fit_policy`): the
best fixed operator is then chosen among those within the token budget, and the routers weigh
tokens against rescue (:mod:`._cost`) and may choose :data:`SKIP`, which repairs nothing.
Every policy's learned state is plain numbers and strings, so :func:`policy_to_params` /
:func:`policy_from_params` serialise any of them to JSON for deployment.

A new policy is one factory decorated with :func:`register_policy`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.utils.validation import check_is_fitted

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._cost import (
    calibrate,
    default_choice,
    relative_costs,
    route_choices,
    with_skip,
)
from lm_failtrace.analysis._defaults import DEFAULT_TOKEN_BUDGET, RETRY, SKIP, TOLERANCE
from lm_failtrace.analysis._features import feature_matrix, standardize, zscore
from lm_failtrace.analysis._gbm import NODE_FIELDS, node_arrays, predict_trees, tree_nodes
from lm_failtrace.analysis._registry import register_policy
from lm_failtrace.analysis._rule import PaperRule
from lm_failtrace.errors import InputError
from lm_failtrace.formatting import to_jsonable
from lm_failtrace.profiles import LOGIT_FEATURES, PAPER_OPERATORS


def _rates(R: pd.DataFrame | np.ndarray, operators: Sequence[str]) -> np.ndarray:
    if isinstance(R, pd.DataFrame):
        return R.loc[:, list(operators)].to_numpy(dtype=float)
    rates = np.asarray(R, dtype=float)
    if rates.ndim != 2 or rates.shape[1] != len(operators):
        raise InputError(f"expected rescue rates of {len(operators)} operators, got {rates.shape}")
    return rates


def _column_means(rates: np.ndarray) -> np.ndarray:
    """Mean rescue per operator over assayed units; -inf for an operator never assayed."""
    assayed = ~np.isnan(rates)
    counts = assayed.sum(axis=0)
    sums = np.where(assayed, rates, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)


class _Constant(BaseEstimator):
    """A policy that sends every unit to its one fitted ``operator_``."""

    @property
    def targets_(self) -> np.ndarray:
        """What a route index names: the one operator."""
        check_is_fitted(self, "operator_")
        return np.asarray([self.operator_], dtype=object)

    def route_index(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Route of each row as an index into :attr:`targets_` (always 0)."""
        check_is_fitted(self, "operator_")
        return np.zeros(len(X), dtype=np.intp)

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "operator_")
        return np.full(len(X), self.operator_, dtype=object)


class FixedOperator(_Constant):
    """Always the same operator (e.g. ``retry``, the no-intervention baseline)."""

    _state = ("operator_",)

    def __init__(self, operator: str = RETRY) -> None:
        self.operator = operator

    def fit(self, X: object = None, R: object = None) -> FixedOperator:
        self.operator_ = str(self.operator)
        return self


def _token_counts(
    tokens: np.ndarray | None, n_units: int, operators: Sequence[str]
) -> np.ndarray | None:
    """The ``tokens`` fit parameter as a float matrix (None stays None), shape-checked."""
    if tokens is None:
        return None
    counts = np.asarray(tokens, dtype=float)
    if counts.shape != (n_units, len(operators)):
        raise InputError(
            f"expected token counts of shape {(n_units, len(operators))}, got {counts.shape}",
            parameter="tokens",
        )
    return counts


def _retry_index(operators: Sequence[str]) -> int:
    """Column of retry, whose mean tokens the budget multiplies."""
    if RETRY not in operators:
        raise InputError(
            f"a token budget is a multiple of {RETRY!r}'s tokens: include it", parameter="operators"
        )
    return list(operators).index(RETRY)


class BestFixed(_Constant):
    """The single operator with the highest mean rescue on the training units (ties: first).

    Fitted with ``tokens``, it chooses among the operators whose mean tokens per trial on the
    training units are within ``token_budget`` x retry's, and :data:`SKIP` (no spend, no
    rescue) when none is.
    """

    _state = ("operator_", "train_means_", "budget_tokens_")

    def __init__(
        self,
        operators: Sequence[str] = PAPER_OPERATORS,
        token_budget: float = DEFAULT_TOKEN_BUDGET,
    ) -> None:
        self.operators = operators
        self.token_budget = token_budget

    def fit(
        self, X: object, R: pd.DataFrame | np.ndarray, tokens: np.ndarray | None = None
    ) -> BestFixed:
        rates = _rates(R, self.operators)
        means = _column_means(rates)
        if not np.isfinite(means).any():
            raise InputError("no operator is assayed on the training units")
        self.train_means_ = means
        self.budget_tokens_ = None
        choices = [*self.operators]
        counts = _token_counts(tokens, len(rates), self.operators)
        if counts is not None:
            kappa, retry = relative_costs(counts, _retry_index(self.operators))
            self.budget_tokens_ = self.token_budget * retry
            affordable = kappa <= self.token_budget * (1 + TOLERANCE) + TOLERANCE
            means = with_skip(np.where(affordable, means, -np.inf))
            choices.append(SKIP)
        self.operator_ = str(choices[int(np.argmax(means))])
        return self


def _training_data(
    router: BaseEstimator, X: pd.DataFrame | np.ndarray, R: pd.DataFrame | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What every fitted router starts from: features, rescue rates, each operator's mean rescue
    and whether it was assayed at all; records the feature names on ``router`` (sklearn style).

    Raises:
        InputError: rows do not match, or no operator was assayed on these units.
    """
    matrix = feature_matrix(X, router.features)
    rates = _rates(R, router.operators)
    if len(matrix) != len(rates):
        raise InputError(f"{len(matrix)} feature rows but {len(rates)} rescue rows")
    means = _column_means(rates)
    usable = np.isfinite(means)
    if not usable.any():
        raise InputError("no operator is assayed on the training units")
    router.feature_names_in_ = np.array(list(router.features), dtype=object)
    router.n_features_in_ = len(router.features)
    return matrix, rates, means, usable


class _Router(BaseEstimator):
    """What the fitted routers share: the cost weight (fitted with ``tokens``) and the routing.

    A subclass fits its per-operator rescue models, then calls :meth:`_finish`; its
    :meth:`predict_rescue` gives the predictions routed on. Without tokens the route is the
    best predicted rescue unless it beats the best fixed operator by less than ``min_gain``;
    with tokens it is the same rule on utilities ``rescue - lambda_ * cost_`` with :data:`SKIP`
    (utility 0) as a further choice, ``lambda_`` calibrated on the training units to meet
    ``token_budget`` (:mod:`._cost`).
    """

    #: Fitted state of the cost weight (``None`` each when fitted without tokens).
    _cost_state = ("cost_", "lambda_", "budget_tokens_", "train_spend_")

    def predict_rescue(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predicted rescue rate per operator, shape (n, n_operators); -inf = never chosen."""
        predicted = self._predicted(X)  # checks that the router is fitted
        return np.where(np.asarray(self.usable_, dtype=bool), predicted, -np.inf)

    def _predicted(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The fitted models' predictions, usable operators or not."""
        raise NotImplementedError

    def _finish(
        self, matrix: np.ndarray, means: np.ndarray, usable: np.ndarray, tokens: np.ndarray | None
    ) -> None:
        """Set the default choice and, with ``tokens``, the calibrated cost weight."""
        self.usable_ = usable
        self.cost_ = self.lambda_ = self.budget_tokens_ = self.train_spend_ = None
        if tokens is None:
            self.default_index_ = int(np.argmax(means))
            return
        weight = calibrate(
            self.predict_rescue(matrix), tokens, means, _retry_index(self.operators),
            self.token_budget, self.min_gain, self.random_state,
        )  # fmt: skip
        self.cost_, self.lambda_ = weight.kappa, weight.lam
        self.budget_tokens_, self.train_spend_ = weight.budget_tokens, weight.spend
        self.default_index_ = default_choice(means, weight.kappa, weight.lam)

    @property
    def targets_(self) -> np.ndarray:
        """What a route index names: the operators, then :data:`SKIP` when costs are weighed."""
        check_is_fitted(self, "usable_")
        extra = [] if self.cost_ is None else [SKIP]
        return np.asarray([*self.operators, *extra], dtype=object)

    def route_index(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Route of each row as an index into :attr:`targets_`."""
        pred = self.predict_rescue(X)
        if self.cost_ is not None:
            kappa = np.asarray(self.cost_, dtype=float)
            pred = with_skip(pred - float(self.lambda_) * kappa)
        return route_choices(pred, int(self.default_index_), self.min_gain)

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return self.targets_[self.route_index(X)]


class RidgeRouter(_Router):
    """Predict each operator's rescue from z-scored features; route to the best prediction.

    One ridge regression per operator (scikit-learn ``RidgeCV``, efficient leave-one-out choice of
    the penalty per operator from ``alphas``). A large penalty shrinks an operator's prediction to
    its training mean, so with uninformative features the router *becomes* the best fixed
    operator. It also leaves the best fixed operator only when another operator's predicted rescue
    beats it by at least ``min_gain``: small predicted gains are mostly noise on a few hundred
    units.
    Missing rescue rates (operator not assayed) are imputed with the operator's training mean, and
    an operator never assayed in training is never chosen. Fitted with ``tokens``, it weighs
    them (:class:`_Router`).

    Args:
        features: feature columns.
        operators: operator columns, in tie-break order.
        alphas: candidate ridge penalties (on standardized features).
        min_gain: predicted rescue (utility) gain required to leave the default choice.
        token_budget: spend to meet when fitted with tokens, x retry's mean tokens.
        random_state: seed of the cost weight's calibration sample (large tables only).
    """

    _state = (
        "feature_names_in_",
        "mean_",
        "scale_",
        "coef_",
        "intercept_",
        "alpha_",
        "usable_",
        "default_index_",
        *_Router._cost_state,
    )

    def __init__(
        self,
        features: Sequence[str] = LOGIT_FEATURES,
        operators: Sequence[str] = PAPER_OPERATORS,
        alphas: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5),
        min_gain: float = 0.02,
        token_budget: float = DEFAULT_TOKEN_BUDGET,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.operators = operators
        self.alphas = alphas
        self.min_gain = min_gain
        self.token_budget = token_budget
        self.random_state = random_state

    def fit(
        self,
        X: pd.DataFrame | np.ndarray,
        R: pd.DataFrame | np.ndarray,
        tokens: np.ndarray | None = None,
    ) -> RidgeRouter:
        matrix, rates, means, usable = _training_data(self, X, R)
        counts = _token_counts(tokens, len(rates), self.operators)
        self.mean_, self.scale_ = standardize(matrix)
        z = zscore(matrix, self.mean_, self.scale_)
        filled = np.where(np.isnan(rates), np.where(usable, means, 0.0), rates)
        coef = np.zeros((rates.shape[1], matrix.shape[1]))
        intercept = np.where(usable, means, 0.0)
        alpha = np.full(rates.shape[1], np.nan)
        if len(matrix) >= 3:
            model = RidgeCV(alphas=list(self.alphas), alpha_per_target=True).fit(z, filled)
            coef, intercept = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
            alpha = np.atleast_1d(model.alpha_).astype(float)
        self.coef_, self.intercept_, self.alpha_ = coef, intercept, alpha
        self._finish(matrix, means, usable, counts)
        return self

    def _predicted(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "coef_")
        z = zscore(feature_matrix(X, self.feature_names_in_), self.mean_, self.scale_)
        return z @ np.asarray(self.coef_).T + np.asarray(self.intercept_)


class GradientBoostedRouter(_Router):
    """Predict each operator's rescue with gradient-boosted trees; route to the best prediction.

    One scikit-learn ``HistGradientBoostingRegressor`` per operator (squared error, fixed
    ``random_state``, no early stopping), fitted on the units where that operator was assayed;
    an operator assayed on fewer than 2 training units predicts its training mean, and one never
    assayed is never chosen. Routing is :class:`RidgeRouter`'s: the best predicted rescue, unless
    it beats the best fixed operator by less than ``min_gain``; fitted with ``tokens``, the same
    cost weight and ``skip`` (:class:`_Router`). Trees can follow thresholds and
    interactions a linear model cannot, at the cost of variance on small cells; opt-in
    (``--policies``), not a default policy.

    The fitted trees are kept as plain data (:mod:`._gbm`): the baseline per operator, every node
    (feature, threshold, children, leaf flag, value, missing-goes-left) and each tree's root and
    operator, so the JSON router predicts exactly what the fitted models predict.

    Args:
        features: feature columns.
        operators: operator columns, in tie-break order.
        max_iter: boosting iterations (trees) per operator.
        max_depth: depth of each tree.
        min_samples_leaf: fewest training units per leaf.
        learning_rate: shrinkage of each tree.
        min_gain: predicted rescue (utility) gain required to leave the default choice.
        random_state: seed of the boosting (and of the cost weight's calibration sample).
        token_budget: spend to meet when fitted with tokens, x retry's mean tokens.
    """

    _state = (
        "feature_names_in_",
        "baseline_",
        "trees_",
        *NODE_FIELDS,
        "usable_",
        "default_index_",
        *_Router._cost_state,
    )

    def __init__(
        self,
        features: Sequence[str] = LOGIT_FEATURES,
        operators: Sequence[str] = PAPER_OPERATORS,
        max_iter: int = 50,
        max_depth: int = 3,
        min_samples_leaf: int = 5,
        learning_rate: float = 0.1,
        min_gain: float = 0.02,
        random_state: int = 0,
        token_budget: float = DEFAULT_TOKEN_BUDGET,
    ) -> None:
        self.features = features
        self.operators = operators
        self.max_iter = max_iter
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.learning_rate = learning_rate
        self.min_gain = min_gain
        self.random_state = random_state
        self.token_budget = token_budget

    def _regressor(self) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            learning_rate=self.learning_rate,
            early_stopping=False,
            random_state=self.random_state,
        )

    def fit(
        self,
        X: pd.DataFrame | np.ndarray,
        R: pd.DataFrame | np.ndarray,
        tokens: np.ndarray | None = None,
    ) -> GradientBoostedRouter:
        matrix, rates, means, usable = _training_data(self, X, R)
        counts = _token_counts(tokens, len(rates), self.operators)
        self.estimators_: list[HistGradientBoostingRegressor | None] = []
        baseline, trees, nodes = np.where(usable, means, 0.0), [], []
        for j in range(rates.shape[1]):
            assayed = ~np.isnan(rates[:, j])
            model = None
            if assayed.sum() >= 2:
                model = self._regressor().fit(matrix[assayed], rates[assayed, j])
                baseline[j], fitted = tree_nodes(model, sum(len(n["node_value_"]) for n in nodes))
                trees.extend([n["root"], j] for n in fitted)
                nodes.extend(fitted)
            self.estimators_.append(model)
        self.baseline_ = baseline
        self.trees_ = np.asarray(trees, dtype=int).reshape(-1, 2)
        for name in NODE_FIELDS:
            setattr(self, name, np.asarray([v for n in nodes for v in n[name]]))
        self._finish(matrix, means, usable, counts)
        return self

    def _predicted(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "trees_")
        matrix = feature_matrix(X, self.feature_names_in_)
        trees = np.asarray(self.trees_, dtype=np.intp).reshape(-1, 2)
        nodes = node_arrays({name: getattr(self, name) for name in NODE_FIELDS})
        return predict_trees(matrix, np.asarray(self.baseline_, dtype=float), trees, nodes)


@register_policy("paper_rule")
def _paper_rule(config: AnalysisConfig) -> PaperRule:
    return config.paper_rule()


@register_policy("best_fixed")
def _best_fixed(config: AnalysisConfig) -> BestFixed:
    return BestFixed(tuple(config.operators), token_budget=config.token_budget)


@register_policy("retry")
def _retry(config: AnalysisConfig) -> FixedOperator:
    return FixedOperator(RETRY)


@register_policy("skip")
def _skip(config: AnalysisConfig) -> FixedOperator:
    return FixedOperator(SKIP)


@register_policy("ridge_router")
def _ridge_router(config: AnalysisConfig) -> RidgeRouter:
    return RidgeRouter(
        tuple(config.features),
        tuple(config.operators),
        token_budget=config.token_budget,
        random_state=config.random_state,
    )


@register_policy("gbm_router")
def _gbm_router(config: AnalysisConfig) -> GradientBoostedRouter:
    return GradientBoostedRouter(
        tuple(config.features),
        tuple(config.operators),
        random_state=config.random_state,
        token_budget=config.token_budget,
    )


#: Fitted state a policy has only since cost weights (None when read from an older router).
_COST_STATE = frozenset({*_Router._cost_state, "budget_tokens_"})

_ESTIMATORS: dict[str, type[BaseEstimator]] = {
    cls.__name__: cls
    for cls in (PaperRule, FixedOperator, BestFixed, RidgeRouter, GradientBoostedRouter)
}


def policy_to_params(estimator: BaseEstimator) -> dict:
    """JSON-able description of a fitted policy: class, constructor params and learned state."""
    check_is_fitted(estimator)
    return {
        "estimator": type(estimator).__name__,
        "params": {k: to_jsonable(v) for k, v in estimator.get_params().items()},
        "state": {k: to_jsonable(getattr(estimator, k)) for k in type(estimator)._state},
    }


def policy_from_params(params: dict) -> BaseEstimator:
    """Rebuild a fitted policy from :func:`policy_to_params` output."""
    try:
        cls = _ESTIMATORS[params["estimator"]]
        estimator = cls(**params["params"])
        state = params["state"]
        for key in cls._state:
            # Cost state may be absent: a router logged before cost weights routes on rescue.
            value = state.get(key) if key in _COST_STATE else state[key]
            setattr(estimator, key, np.asarray(value) if isinstance(value, list) else value)
    except (KeyError, TypeError) as exc:
        raise InputError(f"malformed router parameters: {exc!r}") from exc
    if "feature_names_in_" in cls._state:
        estimator.feature_names_in_ = np.asarray(estimator.feature_names_in_, dtype=object)
        estimator.n_features_in_ = len(estimator.feature_names_in_)
    if "routes_" in cls._state:
        estimator.routes_ = np.asarray(estimator.routes_, dtype=object)
    return estimator
