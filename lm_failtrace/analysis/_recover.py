"""Can a label (the regime, the model) be recovered from the features? Cross-validated accuracy.

Classifier: standardized features -> multinomial logistic regression (scikit-learn defaults,
``max_iter=1000``). Folds: repeated stratified K-fold when every class has at least K members,
otherwise repeated plain K-fold; accuracy is reported as mean +- std over all ``repeats x folds``
held-out folds, next to the majority-class rate (the accuracy of always guessing the commonest
label), which is the bar any claim of recoverability must clear.

A large population (more than :data:`LARGE_POPULATION` units) is cross-validated on a seeded
random sample of that many units (``n_sampled``), and the repeats stop once the mean accuracy is
:func:`._stats.settled` (``n_repeats`` says how many ran); the majority rate stays that of all
units.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import sample_index
from lm_failtrace.analysis._defaults import LARGE_POPULATION
from lm_failtrace.analysis._stats import settled


class _LogisticOrConstant(ClassifierMixin, BaseEstimator):
    """Standardize + logistic regression; predicts the only class of a one-class training fold.

    Small cells with a rare class get training folds without it (unstratified folds); a plain
    logistic regression would fail there instead of making the obvious prediction.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> _LogisticOrConstant:
        self.classes_ = np.unique(y)
        self.model_ = None
        if len(self.classes_) > 1:
            self.model_ = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            self.model_.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.model_ is None:
            return np.full(len(X), self.classes_[0])
        return self.model_.predict(X)


def cv_accuracy(X: np.ndarray, labels: np.ndarray, config: AnalysisConfig) -> dict:
    """Held-out accuracy of predicting ``labels`` from ``X`` (see the module docstring)."""
    counts = pd.Series(labels, dtype=object).value_counts()
    n = len(labels)
    base = {
        "majority_class": str(counts.index[0]) if n else None,
        "majority_rate": float(counts.iloc[0] / n) if n else None,
        "n_classes": len(counts),
        "classifier": "standardize + logistic regression",
    }
    if len(counts) < 2:
        return {**base, "skipped": "a single class: nothing to predict"}
    sample = sample_index(n, LARGE_POPULATION, config.random_state)
    if sample is not None:
        X, labels = X[sample], labels[sample]
        base["n_sampled"] = LARGE_POPULATION
    n_splits = min(config.n_folds, len(labels))
    y = labels.astype(str)
    counts = pd.Series(y, dtype=object).value_counts()
    if counts.iloc[-1] >= n_splits:
        cv = RepeatedStratifiedKFold(
            n_splits=n_splits, n_repeats=config.n_repeats, random_state=config.random_state
        )
    else:
        cv = RepeatedKFold(
            n_splits=n_splits, n_repeats=config.n_repeats, random_state=config.random_state
        )
    scores = _repeated_scores(X, y, cv, n_splits, config.n_repeats)
    return {
        **base,
        "accuracy_mean": float(scores.mean()),
        "accuracy_std": float(scores.std()),
        "n_folds": n_splits,
        "n_repeats": len(scores) // n_splits,
        "stratified": isinstance(cv, RepeatedStratifiedKFold),
    }


def _repeated_scores(
    X: np.ndarray, y: np.ndarray, cv: RepeatedKFold, n_splits: int, n_repeats: int
) -> np.ndarray:
    """Held-out accuracy of every fold, repeat by repeat; a large population stops once the mean
    accuracy is settled (its standard error over units: that of a share of ``len(y)`` units)."""
    splits = cv.split(X, y)
    scores: list[np.ndarray] = []
    for _ in range(n_repeats):
        folds = list(itertools.islice(splits, n_splits))
        scores.append(
            cross_val_score(
                _LogisticOrConstant(), X, y, cv=folds, scoring="accuracy", error_score="raise"
            )
        )
        if len(y) >= LARGE_POPULATION:
            means = np.array([s.mean() for s in scores])
            accuracy = float(np.concatenate(scores).mean())
            if settled(means, np.sqrt(accuracy * (1 - accuracy) / len(y))):
                break
    return np.concatenate(scores)
